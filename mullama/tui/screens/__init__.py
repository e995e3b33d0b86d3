"""One screen per app mode: dashboard, models, chat, playground, settings."""
