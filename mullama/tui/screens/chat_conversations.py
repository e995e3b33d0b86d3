"""Chat's conversation commands: rename, export and import, copy a reply or a code block.

ChatScreen builds on this; it is apart so the screen's file stays about talking to a model.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import Label

from .. import conversation_io
from ..conversation_io import BadImport
from ..conversations import Conversation, ConversationStore, Turn
from ..widgets.conversation_dialogs import CodeBlockPicker, ExportDialog
from ..widgets.dialogs import AskDialog, ConfirmDialog

if TYPE_CHECKING:
    from ..app import MullamaApp


class ConversationActions(Screen):
    """Actions on ``self.current``; the screen provides the store, the list and ``open``."""

    if TYPE_CHECKING:
        app: MullamaApp
    store: ConversationStore
    conversations: list[Conversation]
    current: Conversation | None

    async def open(self, conversation: Conversation) -> None:
        raise NotImplementedError

    async def show_list(self) -> None:
        raise NotImplementedError

    async def show_title(self) -> None:
        if self.current is not None:
            self.query_one("#chat-title", Label).update(self.current.title)
        await self.show_list()

    @work(exclusive=True, group="dialog")
    async def action_rename(self) -> None:
        c = self.current
        if c is None:
            return
        title = await self.app.push_screen_wait(
            AskDialog("Rename the conversation", value=c.title, hint="Enter renames, Esc cancels")
        )
        title = " ".join((title or "").split())[:120]
        if not title or title == c.title:
            return
        c.title = title
        await self.show_title()
        if c.turns:  # an empty conversation is saved with its first reply
            await asyncio.to_thread(self.store.save, c)

    # ---------------------------------------------------------------- export and import

    @work(exclusive=True, group="dialog")
    async def action_export(self, fmt: str = "markdown") -> None:
        c = self.current
        if c is None or not c.turns:
            self.notify("Nothing to export yet: this conversation is empty.", severity="warning")
            return
        exports = self.app.settings.data_dir / "exports"
        default = conversation_io.default_export_path(c, fmt, exports)
        answer = await self.app.push_screen_wait(ExportDialog(c.title, default, fmt))
        if answer is None:
            return
        path, fmt = answer
        path = Path.cwd() / path.expanduser()
        if path.is_dir():
            path = path / conversation_io.default_export_path(c, fmt, exports).name
        if path == default and path.parent == exports:
            await asyncio.to_thread(exports.mkdir, parents=True, exist_ok=True)
        if not path.parent.is_dir():
            self.notify(
                f"There is no folder {path.parent}.", title="Not exported", severity="error"
            )
            return
        if path.exists() and not await self.app.push_screen_wait(
            ConfirmDialog(f"Replace the file {escape(str(path))}?", "Replace")
        ):
            return
        text = conversation_io.render(c, fmt)
        try:
            await asyncio.to_thread(conversation_io.write_atomic, path, text)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            self.notify(f"Cannot write {path}: {reason}", title="Not exported", severity="error")
            return
        kind = "Markdown" if fmt == "markdown" else "JSON"
        self.notify(f"Wrote “{c.title}” as {kind} to {path}", title="Exported", timeout=8)

    @work(exclusive=True, group="dialog")
    async def action_import_conversation(self) -> None:
        answer = await self.app.push_screen_wait(
            AskDialog(
                "Import a conversation",
                placeholder="path/to/conversation.json",
                hint="A file written by “Export conversation as JSON”.",
            )
        )
        if answer is None:
            return
        path = Path.cwd() / Path(answer).expanduser()
        try:
            conversation = await asyncio.to_thread(conversation_io.read_export, path)
        except BadImport as exc:
            self.notify(f"{path}: {exc}", title="Not imported", severity="error", timeout=10)
            return
        known = {c.id for c in self.conversations}
        if conversation.id in known or self.store.path(conversation.id).exists():
            conversation.id = Conversation().id  # a copy beside the one already here
        await asyncio.to_thread(self.store.save, conversation)
        self.conversations.insert(0, conversation)
        await self.open(conversation)
        await self.show_list()
        count = len(conversation.turns)
        self.notify(
            f"“{conversation.title}”, {count} message{'s' if count != 1 else ''}",
            title="Imported",
        )

    # ---------------------------------------------------------------- copying

    def last_reply(self) -> Turn | None:
        turns = self.current.turns if self.current is not None else []
        return next((t for t in reversed(turns) if t.role == "assistant" and t.content), None)

    def action_copy_reply(self) -> None:
        reply = self.last_reply()
        if reply is None:
            self.notify("There is no reply to copy yet.", severity="warning")
            return
        self.app.copy_to_clipboard(reply.content)
        line = " ".join(reply.content.split())
        preview = line[:40] + ("…" if len(line) > 40 else "")
        self.notify(
            f"The last reply ({len(reply.content)} characters): “{preview}”",
            title="Copied to the clipboard",
        )

    @work(exclusive=True, group="dialog")
    async def action_copy_code(self) -> None:
        reply = self.last_reply()
        blocks = conversation_io.code_blocks(reply.content) if reply is not None else []
        if not blocks:
            self.notify("The last reply has no code block.", severity="warning")
            return
        index = len(blocks) - 1
        if len(blocks) > 1:
            choices = [_block_choice(i, lang, code) for i, (lang, code) in enumerate(blocks)]
            chosen = await self.app.push_screen_wait(
                CodeBlockPicker(f"Copy which of the {len(blocks)} code blocks?", choices)
            )
            if chosen is None:
                return
            index = choices.index(chosen)
        lang, code = blocks[index]
        self.app.copy_to_clipboard(code)
        lines = len(code.splitlines())
        what = f"The {lang} code block" if lang else "The code block"
        self.notify(f"{what} ({lines} line{'s' if lines != 1 else ''})", title="Copied")


def _block_choice(index: int, lang: str, code: str) -> str:
    first = next((line.strip() for line in code.splitlines() if line.strip()), "")
    lines = len(code.splitlines())
    head = f"{index + 1}. {lang or 'code'}, {lines} line{'s' if lines != 1 else ''}: "
    return escape(head + (first[:50] + ("…" if len(first) > 50 else "")))
