"""Cross-cutting code shared by every Eindr component. No domain logic lives here."""
