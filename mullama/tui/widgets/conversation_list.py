"""The Chat sidebar's search box and conversation list, with their own keys."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Input, ListView


class ConversationSearch(Input):
    """Filters the list as it is typed; Esc clears it, Enter or Down goes to the matches."""

    BINDINGS = [
        Binding("escape", "screen.close_search", "Close search"),
        Binding("down", "screen.focus_list", "Matches", show=False),
    ]


class ConversationList(ListView):
    """The saved conversations; R and E open the highlighted one and rename or export it."""

    BINDINGS = [
        Binding("slash", "screen.search", "Search", show=False),
        Binding("r", "screen.on_highlighted('rename')", "Rename", show=False),
        Binding("e", "screen.on_highlighted(\"export('markdown')\")", "Export", show=False),
        Binding("i", "screen.import_conversation", "Import", show=False),
    ]
