"""Fixed vocabulary of the sandbox world: names, places, the menu, the branches.

Everything here is fictional. Phone numbers are drawn from real UK number plans so that a
phone library accepts them, but the subscriber digits are random.
"""

from __future__ import annotations

from typing import NamedTuple

BRAND = "Copper Kettle Kitchens"
CURRENCY = "GBP"


class FirstName(NamedTuple):
    """A given name, its sex and the nicknames people use instead of it."""

    name: str
    sex: str
    nicknames: tuple[str, ...] = ()


def _names(sex: str, rows: str) -> list[FirstName]:
    out = []
    for row in rows.strip().splitlines():
        name, _, nicks = row.strip().partition(":")
        nick_tuple = tuple(n for n in nicks.split(",") if n)
        out.append(FirstName(name, sex, nick_tuple))
    return out


FIRST_NAMES: list[FirstName] = _names(
    "M",
    """
    Robert:Bob,Rob,Bobby
    William:Bill,Will,Billy
    James:Jim,Jamie
    Michael:Mike,Mick
    Thomas:Tom,Tommy
    Alexander:Alex,Sandy
    Christopher:Chris,Kit
    Daniel:Dan,Danny
    Matthew:Matt
    Samuel:Sam,Sammy
    Jonathan:Jon,Johnny
    Richard:Rich,Dick,Richie
    Edward:Ed,Ted,Eddie
    Joseph:Joe,Joey
    Benjamin:Ben,Benji
    Nicholas:Nick,Nicky
    Anthony:Tony
    Andrew:Andy,Drew
    Stephen:Steve
    Peter:Pete
    David:Dave,Davy
    Timothy:Tim
    Harry:
    Oliver:Ollie
    George:
    Jack:
    Mohammed:Mo
    Aarav:
    Ravi:
    Liam:
    Noah:
    Arthur:Art
    Seán:
    José:Pepe
    Łukasz:
    Chen:
    Kwame:
    """,
) + _names(
    "F",
    """
    Elizabeth:Liz,Beth,Lizzie,Betty
    Katherine:Kate,Kathy,Katie
    Margaret:Maggie,Peggy,Meg
    Jennifer:Jen,Jenny
    Rebecca:Becky,Becca
    Victoria:Vicky,Tori
    Alexandra:Alex,Lexi
    Catherine:Cathy,Cat
    Patricia:Pat,Trish
    Susan:Sue,Suzy
    Deborah:Debbie,Deb
    Jessica:Jess
    Samantha:Sam,Sammy
    Charlotte:Lottie,Charlie
    Eleanor:Ellie,Nell
    Olivia:Liv,Livvy
    Abigail:Abby
    Amelia:Millie
    Christine:Chris,Chrissie
    Emily:Em
    Sophie:
    Grace:
    Hannah:
    Isla:
    Priya:
    Fatima:
    Aisha:
    Zoë:
    Chloé:
    Siobhán:
    Renée:
    Mei:
    Ngozi:
    """,
)

SURNAMES: list[str] = [
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
    "Walker",
    "White",
    "Roberts",
    "Green",
    "Hall",
    "Wood",
    "Jackson",
    "Clarke",
    "Patel",
    "Khan",
    "Lewis",
    "James",
    "Phillips",
    "Mason",
    "Mitchell",
    "Rose",
    "Davis",
    "Rodriguez",
    "Cox",
    "Alexander",
    "Morgan",
    "Moore",
    "Cooper",
    "Harris",
    "Martin",
    "Hughes",
    "Ward",
    "Turner",
    "Hill",
    "Parker",
    "Morris",
    "King",
    "Baker",
    "Harrison",
    "Edwards",
    "Collins",
    "Stewart",
    "Murphy",
    "Kelly",
    "Campbell",
    "Bell",
    "Anderson",
    "Scott",
    "Young",
    "Watson",
    "Allen",
    "Graham",
    "Shaw",
    "Owen",
    "Kaur",
    "Singh",
    "Ahmed",
    "Hussain",
    "Begum",
    "Ali",
    "Nowak",
    "Kowalski",
    "Müller",
    "O'Brien",
    "O'Connor",
    "MacDonald",
    "McDonald",
    "Byrne",
    "Doyle",
    "García",
    "Núñez",
    "Fernández",
    "Rossi",
    "Esposito",
    "Nguyen",
    "Wang",
    "Zhang",
    "Okafor",
    "Mensah",
    "Adeyemi",
    "Osei",
    "Chaudhry",
    "Sharma",
    "Gupta",
    "Fraser",
    "Sinclair",
    "Whitaker",
    "Fletcher",
    "Holloway",
    "Pemberton",
    "Ashworth",
    "Blackwood",
    "Thornton",
    "Hargreaves",
    "Cartwright",
    "Llewellyn",
    "Smith-Jones",
    "Lloyd-Webber",
    "de Souza",
    "van der Berg",
    "Le Roux",
    "Fitzgerald",
    "Kennedy",
    "Gallagher",
    "Quinn",
    "Reid",
]


class City(NamedTuple):
    """A town with its phone area code (without the trunk 0) and postcode districts."""

    name: str
    area_code: str
    subscriber_digits: int
    postcodes: tuple[str, ...]
    county: str


CITIES: list[City] = [
    City(
        "London", "20", 8, ("W1D", "W1F", "E1", "E2", "SW4", "SW11", "N1", "SE1"), "Greater London"
    ),
    City("Manchester", "161", 7, ("M1", "M4", "M14", "M20"), "Greater Manchester"),
    City("Bristol", "117", 7, ("BS1", "BS6", "BS8"), "Bristol"),
    City("Edinburgh", "131", 7, ("EH6", "EH1", "EH3"), "City of Edinburgh"),
    City("Leeds", "113", 7, ("LS1", "LS6"), "West Yorkshire"),
]

STREETS: list[str] = """
High Street|Station Road|Church Lane|Victoria Road|Green Lane|Manor Road|Park Avenue|
Queen's Road|Mill Lane|Kings Road|The Crescent|Orchard Close|Albert Street|Elm Grove|
Chapel Street|Windsor Road|York Road|Springfield Road|Grange Road|Cavendish Avenue|
Belmont Road|Richmond Terrace|Meadow Way|Beech Avenue|Clarendon Road|Stanley Street|
Market Street|Princes Street|Park Road|New Street
""".replace("\n", "").split("|")


class Branch(NamedTuple):
    """A restaurant of the network: one Square location."""

    key: str
    name: str
    city_index: int
    address: str
    postcode: str


BRANCHES: list[Branch] = [
    Branch("soho", "Copper Kettle Soho", 0, "41 Old Compton Street", "W1D 6HF"),
    Branch("shoreditch", "Copper Kettle Shoreditch", 0, "112 Brick Lane", "E1 6RL"),
    Branch("clapham", "Copper Kettle Clapham", 0, "9 Clapham Manor Street", "SW4 6DZ"),
    Branch("manchester", "Copper Kettle Northern Quarter", 1, "23 Tib Street", "M4 1LA"),
    Branch("bristol", "Copper Kettle Harbourside", 2, "4 Canon's Road", "BS1 5UH"),
    Branch("edinburgh", "Copper Kettle Leith", 3, "77 The Shore", "EH6 6RG"),
]

# Share of households living near each branch (must sum to 1).
BRANCH_WEIGHTS: list[float] = [0.24, 0.2, 0.16, 0.16, 0.13, 0.11]


class MenuItem(NamedTuple):
    """A dish or drink; price in pence, VAT included."""

    name: str
    price: int
    kind: str


MENU: list[MenuItem] = [
    MenuItem("Fish & Chips", 1650, "main"),
    MenuItem("Margherita Pizza", 1200, "main"),
    MenuItem("Beef Burger", 1450, "main"),
    MenuItem("Sunday Roast", 1895, "main"),
    MenuItem("Mushroom Risotto", 1400, "main"),
    MenuItem("Lamb Tagine", 1750, "main"),
    MenuItem("Chicken Katsu Curry", 1550, "main"),
    MenuItem("Vegan Buddha Bowl", 1300, "main"),
    MenuItem("Full English", 1250, "main"),
    MenuItem("Caesar Salad", 1100, "starter"),
    MenuItem("Avocado Toast", 950, "starter"),
    MenuItem("Chips", 400, "side"),
    MenuItem("Sticky Toffee Pudding", 750, "dessert"),
    MenuItem("Eton Mess", 700, "dessert"),
    MenuItem("Flat White", 350, "drink"),
    MenuItem("Pint of Pale Ale", 600, "drink"),
    MenuItem("House Red (175ml)", 750, "drink"),
    MenuItem("Espresso Martini", 1000, "drink"),
    MenuItem("Homemade Lemonade", 350, "drink"),
    MenuItem("Kids Pasta", 700, "main"),
]

MAIN_DISHES: list[int] = [i for i, m in enumerate(MENU) if m.kind == "main"]

ALLERGIES: list[str] = ["Peanuts", "Tree nuts", "Gluten", "Dairy", "Shellfish", "Eggs", "Sesame"]

PERSONAL_DOMAINS: list[str] = [
    "gmail.com",
    "gmail.com",
    "gmail.com",
    "outlook.com",
    "hotmail.co.uk",
    "yahoo.co.uk",
    "icloud.com",
    "btinternet.com",
    "proton.me",
]

# Typos people make when they type their own e-mail domain.
DOMAIN_TYPOS: dict[str, str] = {
    "gmail.com": "gmial.com",
    "outlook.com": "outlok.com",
    "hotmail.co.uk": "hotmail.co",
    "yahoo.co.uk": "yaho.co.uk",
    "icloud.com": "icloud.co",
    "btinternet.com": "btinternet.co.uk",
    "proton.me": "proton.com",
}

COMPANY_WORDS_A: list[str] = [
    "Bright",
    "North",
    "Blue",
    "Silver",
    "Green",
    "Oak",
    "Harbour",
    "Red",
    "Swift",
    "Clear",
    "Iron",
    "Maple",
    "Cedar",
    "Urban",
    "Apex",
    "Nova",
]
COMPANY_WORDS_B: list[str] = [
    "wave",
    "field",
    "stone",
    "bridge",
    "works",
    "line",
    "point",
    "gate",
    "forge",
    "path",
    "leaf",
    "light",
    "house",
    "mark",
]
COMPANY_SUFFIXES: list[str] = ["Ltd", "Digital", "Partners", "Consulting", "Group", "Studio"]

INVOICE_ITEMS: list[tuple[str, int, int]] = [
    ("Private dining room hire", 25000, 60000),
    ("Event catering", 40000, 180000),
    ("Corporate lunch platters", 9000, 45000),
    ("Gift vouchers", 5000, 50000),
    ("Birthday party package", 15000, 60000),
]

FEEDBACK_COMMENTS: list[str] = [
    "Loved the {dish}, will be back!",
    "Service was slow but the {dish} was worth the wait.",
    "The {dish} was a bit cold this time.",
    "Great atmosphere at {branch}.",
    "Staff at {branch} remembered my allergy, thank you.",
    "Could you add more vegan options?",
    "Perfect Sunday with the family.",
]

UNSUBSCRIBE_REASONS: list[str] = [
    "I no longer want to receive these emails",
    "The emails are too frequent",
    "I never signed up for this mailing list",
    "The emails are spam and should be reported",
    "Other",
]
