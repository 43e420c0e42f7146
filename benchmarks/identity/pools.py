"""Value pools for the synthetic customer generator (names, places, e-mail providers)."""

from __future__ import annotations

MALE = """james john robert michael william david richard joseph thomas charles christopher daniel
matthew anthony mark donald steven paul andrew joshua kenneth kevin brian george timothy ronald
edward jason jeffrey ryan jacob gary nicholas eric jonathan stephen larry justin scott brandon
benjamin samuel gregory alexander frank patrick raymond jack dennis jerry tyler aaron jose adam
nathan henry douglas zachary peter kyle ethan walter noah jeremy christian keith roger terry gerald
harold sean austin carl arthur lawrence dylan jesse jordan bryan billy joe bruce gabriel logan
albert willie alan juan wayne elijah randy roy vincent ralph eugene russell bobby mason philip
louis harry oliver charlie alfie freddie archie leo oscar theo arthur lucas isaac finley hugo
toby max riley luca rory callum connor liam declan niall owen rhys gareth dafydd ian neil graham
stuart colin malcolm derek trevor clive nigel barry howard leonard stanley cyril mohammed ahmed
ali omar hassan tariq imran raj sanjay vikram arjun rohan wei jun hiroshi kenji piotr tomasz
marek pavel andrei mikhail dmitri sergei giovanni marco luca matteo francesco alessandro pierre
jean luc francois antoine hans klaus jurgen stefan lars sven erik miguel carlos javier alejandro
pablo diego rafael fernando kwame kofi chidi emeka tunde""".split()  # noqa: SIM905

FEMALE = """mary patricia jennifer linda elizabeth barbara susan jessica sarah karen lisa nancy
betty margaret sandra ashley kimberly emily donna michelle carol amanda dorothy melissa
deborah stephanie
rebecca sharon laura cynthia kathleen amy angela shirley anna brenda pamela emma nicole helen
samantha katherine christine debra rachel carolyn janet catherine maria heather diane ruth julie
olivia joyce virginia victoria kelly lauren christina joan evelyn judith megan andrea cheryl hannah
jacqueline martha gloria teresa ann sara madison frances kathryn janice jean abigail alice judy
sophia grace denise amber doris marilyn danielle beverly isabella theresa diana natalie brittany
charlotte marie kayla alexis lori amelia isla ava mia poppy ella lily freya sophie evie daisy
ruby florence rosie millie imogen phoebe matilda eleanor harriet beatrice gemma kirsty fiona
siobhan aoife niamh sinead bethan rhiannon gwen carys priya anjali sunita fatima aisha zainab
mei yuki akiko agnieszka katarzyna magdalena olga natalia irina svetlana giulia francesca chiara
sofia elena lucia carmen isabel marta ingrid astrid annika greta heidi claudia monique sylvie
camille amelie nadia leila yasmin chloe zoe jade""".split()  # noqa: SIM905

SURNAMES = """smith jones williams taylor brown davies evans wilson thomas johnson roberts robinson
thompson wright walker white edwards hughes green hall lewis harris clarke patel jackson wood
turner martin cooper hill ward morris moore clark lee king baker harrison morgan allen james scott
phillips watson davis parker price bennett young griffiths mitchell kelly cook carter richardson
bailey collins bell shaw murphy miller cox richards khan marshall anderson simpson ellis adams
singh begum wilkinson foster chapman powell webb rogers gray mason ali hunt hussain campbell
matthews owen palmer holmes mills barnes knight lloyd butler russell barker fisher stevens
jenkins murray dixon harvey graham pearson ahmed fletcher walsh kaur gibson howard andrews stewart
elliott reynolds saunders payne fox ford pearce day brooks west lawrence cole atkinson bradley
spencer gill dawson ball burton o'brien watts rose booth perry ryan grant wells armstrong francis
rees hayes hart hudson newman barrett gregory jordan riley dean knowles black shah lambert
hamilton o'connor tucker warren sutton kennedy holland henderson wallace hopkins peters byrne
stone long woods sharp nicholson osborne lowe mcdonald hardy hodgson pritchard burns mann
chambers fowler harper berry marsh jennings slater duncan gordon robertson miah reid jarvis
thornton reed hawkins bishop moss pope yates porter austin carr ross barber blake wade cross
lamb curtis fuller parsons lucas middleton hussein quinn vaughan kent pugh frost holt goodwin
rahman begley sheppard hammond akhtar iqbal wong chen zhang li wang nowak kowalski wisniewski
rossi russo ferrari esposito bianchi romano garcia fernandez rodriguez lopez martinez gonzalez
sanchez perez muller schmidt schneider fischer weber meyer wagner becker dubois moreau laurent
van der berg de jong janssen de vries okafor adeyemi mensah nguyen tran kim park silva santos
oliveira pereira costa murphy doyle gallagher mccarthy o'neill sweeney kavanagh""".split()  # noqa: SIM905

# Pieces for a long tail of rarer surnames ("Ashworth", "Kingsbury"...).
SURNAME_HEADS = """ash ald bar black brad brom cald carl chad cold crom dal dun ell fair farn
felt fox gar glad grant had hal hart hather hol hook hum kings kirk lang lath lind lock mar
mel mil nether new north old orm pen pick rad red rick ring sand shel stan stock sud thorn
tod wal war west whit wick win wood wor yard brig dray eld hurst""".split()  # noqa: SIM905
SURNAME_TAILS = """worth bury ley ton ham field well wood ford by croft dale more stead hurst
wick ridge cott low stone man son er ell ing land thorpe brook mead gate bourne den""".split()  # noqa: SIM905

NICKNAMES = {
    "robert": ["bob", "rob", "robbie", "bobby"], "william": ["bill", "will", "billy", "liam"],
    "james": ["jim", "jimmy", "jamie"], "john": ["jack", "johnny", "jon"],
    "richard": ["rick", "dick", "rich", "richie"], "michael": ["mike", "mick", "mikey"],
    "thomas": ["tom", "tommy"], "christopher": ["chris", "kit"], "daniel": ["dan", "danny"],
    "matthew": ["matt"], "anthony": ["tony"], "joseph": ["joe", "joey"], "david": ["dave"],
    "edward": ["ed", "eddie", "ted"], "andrew": ["andy", "drew"], "stephen": ["steve"],
    "steven": ["steve"], "nicholas": ["nick", "nicky"], "alexander": ["alex", "sandy"],
    "benjamin": ["ben", "benny"], "samuel": ["sam", "sammy"], "patrick": ["pat", "paddy"],
    "gregory": ["greg"], "timothy": ["tim", "timmy"], "kenneth": ["ken", "kenny"],
    "ronald": ["ron", "ronnie"], "donald": ["don"], "charles": ["charlie", "chuck"],
    "henry": ["harry", "hank"], "frederick": ["fred", "freddie"], "peter": ["pete"],
    "jonathan": ["jon", "jonny"], "zachary": ["zach", "zack"], "lawrence": ["larry"],
    "raymond": ["ray"], "gerald": ["gerry", "jerry"], "leonard": ["len", "lenny"],
    "elizabeth": ["liz", "beth", "lizzie", "betty", "eliza"], "margaret": ["maggie", "meg",
    "peggy"], "katherine": ["kate", "katie", "kathy"], "catherine": ["cathy", "kate", "cath"],
    "jennifer": ["jen", "jenny"], "patricia": ["pat", "patty", "trish"], "rebecca": ["becky",
    "becca"], "deborah": ["debbie", "deb"], "victoria": ["vicky", "tori"], "samantha": ["sam",
    "sammy"], "jessica": ["jess", "jessie"], "kimberly": ["kim"], "susan": ["sue", "susie"],
    "christine": ["chris", "chrissy"], "christina": ["tina", "chris"], "alexandra": ["alex",
    "lexi"], "abigail": ["abby"], "jacqueline": ["jackie"], "pamela": ["pam"], "dorothy": ["dot",
    "dottie"], "barbara": ["barb", "babs"], "sandra": ["sandy"], "amanda": ["mandy"],
    "cynthia": ["cindy"], "kathleen": ["kathy", "kath"], "judith": ["judy"], "theresa":
    ["tess", "terri"], "teresa": ["tess", "terri"], "stephanie": ["steph"], "melissa": ["mel"],
    "natalie": ["nat"], "frances": ["fran"], "isabella": ["bella", "izzy"], "eleanor":
    ["ellie", "nora"], "florence": ["flo"], "matilda": ["tilly"], "harriet": ["hattie"],
    "beatrice": ["bea"], "victor": ["vic"], "vincent": ["vince"], "douglas": ["doug"],
    "philip": ["phil"], "arthur": ["art"], "oliver": ["ollie"], "archibald": ["archie"],
    "francesco": ["franco"], "giovanni": ["gianni"], "alejandro": ["alex"], "javier": ["javi"],
    "mikhail": ["misha"], "dmitri": ["dima"], "natalia": ["natasha"], "katarzyna": ["kasia"],
}  # fmt: skip

TOWNS = [
    ("London", "Greater London", ["SW", "SE", "N", "E", "W", "NW", "EC"], "020"),
    ("Birmingham", "West Midlands", ["B"], "0121"), ("Manchester", "Greater Manchester",
    ["M"], "0161"), ("Leeds", "West Yorkshire", ["LS"], "0113"), ("Bristol", "Bristol", ["BS"],
    "0117"), ("Sheffield", "South Yorkshire", ["S"], "0114"), ("Nottingham", "Nottinghamshire",
    ["NG"], "0115"), ("Leicester", "Leicestershire", ["LE"], "0116"), ("Edinburgh",
    "Midlothian", ["EH"], "0131"), ("Glasgow", "Lanarkshire", ["G"], "0141"), ("Liverpool",
    "Merseyside", ["L"], "0151"), ("Newcastle upon Tyne", "Tyne and Wear", ["NE"], "0191"),
    ("Cardiff", "South Glamorgan", ["CF"], "029"), ("Belfast", "County Antrim", ["BT"], "028"),
    ("Oxford", "Oxfordshire", ["OX"], "01865"), ("Cambridge", "Cambridgeshire", ["CB"],
    "01223"), ("Brighton", "East Sussex", ["BN"], "01273"), ("York", "North Yorkshire",
    ["YO"], "01904"), ("Norwich", "Norfolk", ["NR"], "01603"), ("Exeter", "Devon", ["EX"],
    "01392"), ("Reading", "Berkshire", ["RG"], "0118"), ("Coventry", "West Midlands", ["CV"],
    "024"), ("Southampton", "Hampshire", ["SO"], "023"), ("Bath", "Somerset", ["BA"], "01225"),
]  # fmt: skip

STREET_NAMES = """high church station victoria green manor park queens kings grange new
mill school north south west east london york albert windsor springfield chestnut oak elm
ash beech birch willow maple cedar hawthorn holly ivy rose orchard meadow field farm bridge
castle abbey priory mount hill valley river lake forest heath common market broad long mount
pleasant silver golden princes richmond clarence alexandra stanley cromwell nelson wellington
trafalgar waterloo marlborough salisbury devonshire cavendish bedford""".split()  # noqa: SIM905
STREET_TYPES = ["Street", "Road", "Avenue", "Lane", "Close", "Drive", "Way", "Gardens",
                "Crescent", "Place", "Grove", "Terrace", "Court", "Square"]  # fmt: skip
STREET_ABBREVIATIONS = {"Street": "St", "Road": "Rd", "Avenue": "Ave", "Lane": "Ln",
                        "Close": "Cl", "Drive": "Dr", "Gardens": "Gdns", "Crescent": "Cres",
                        "Place": "Pl", "Grove": "Gr", "Terrace": "Terr", "Court": "Ct",
                        "Square": "Sq", "Way": "Way"}  # fmt: skip

EMAIL_PROVIDERS = [("gmail.com", 34), ("hotmail.co.uk", 9), ("hotmail.com", 5),
                   ("yahoo.co.uk", 7), ("yahoo.com", 3), ("outlook.com", 9), ("icloud.com", 7),
                   ("btinternet.com", 5), ("sky.com", 3), ("live.co.uk", 3), ("aol.com", 2),
                   ("virginmedia.com", 3), ("protonmail.com", 1), ("me.com", 2),
                   ("talktalk.net", 2), ("ntlworld.com", 2)]  # fmt: skip
COMPANY_DOMAINS = [
    "acme.co.uk",
    "globex.com",
    "initech.co.uk",
    "umbrella.org.uk",
    "hooli.com",
    "stark.co.uk",
    "wayne.com",
    "cyberdyne.co.uk",
    "soylent.com",
    "tyrell.co.uk",
]

JUNK_EMAILS = ["test@example.com", "noemail@noemail.com", "n/a", "none@none.com", "x@x.com",
               "no@email.com", "test@test.com", "customer@example.com", "noemail",
               "donotreply@example.com", "a@a.com", "unknown"]  # fmt: skip
JUNK_PHONES = ["0000000000", "00000000000", "07000000000", "1234567890", "01234567890",
               "n/a", "1111111111", "9999999999", "000", "unknown"]  # fmt: skip
