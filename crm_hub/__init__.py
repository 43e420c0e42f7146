"""crm-hub: one true picture of every customer."""
