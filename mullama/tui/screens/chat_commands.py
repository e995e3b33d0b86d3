"""The Chat screen's conversation commands in the command palette (ctrl+p).

The footer's bindings reach the palette through ``MullamaApp.get_system_commands``; these are
the ones the footer leaves out, and the export formats by name.
"""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

COMMANDS = [  # name, help, action on the Chat screen
    ("Search conversations", "Filter the list by title and text (ctrl+f)", "search"),
    ("Rename conversation", "Give the open conversation a new title (ctrl+r)", "rename"),
    ("Export conversation as Markdown", "Write it to a .md file (ctrl+s)", "export('markdown')"),
    ("Export conversation as JSON", "Write it to a .json file to import later", "export('json')"),
    ("Import conversation", "Read a conversation from a JSON export", "import_conversation"),
    ("Copy a code block", "Copy a code block of the last reply (ctrl+g)", "copy_code"),
]


class ConversationCommands(Provider):
    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, action in COMMANDS:
            if (score := matcher.match(name)) > 0:
                yield Hit(score, matcher.highlight(name), self._runner(action), help=help_text)

    async def discover(self) -> Hits:
        for name, help_text, action in COMMANDS:
            yield DiscoveryHit(name, self._runner(action), help=help_text)

    def _runner(self, action: str):
        return partial(self.screen.run_action, action)
