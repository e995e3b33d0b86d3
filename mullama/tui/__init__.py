"""The Mullama terminal app (Textual): Dashboard, Models, Chat, Playground, Settings."""
