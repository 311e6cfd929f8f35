"""Stage 5: the paper-trading service (FIX gateway, journal, engine)."""
