"""Chat: conversations on disk, a model picker, replies streamed into Markdown, Esc stops.

Conversations can be searched, renamed, exported (Markdown, JSON) and imported; the last reply
or one of its code blocks copied; a reply says what it waits for until its first token.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.markup import escape
from textual.widgets import Input, Label, ListItem, ListView, Select

from ...engine.api import (
    ChatRequest,
    Done,
    Engine,
    EngineError,
    Event,
    Started,
    TextDelta,
    ThinkingDelta,
)
from ...engine.refs import normalize_name, same_name
from ..conversations import Conversation, ConversationStore, Turn
from ..format import reply_stats
from ..widgets.chat_message import ChatMessage
from ..widgets.conversation_list import ConversationList, ConversationSearch
from ..widgets.conversation_options import ConversationOptions
from ..widgets.dialogs import ConfirmDialog
from ..widgets.footer import Footer
from ..widgets.image_attach import (
    Attachment,
    AttachmentsLabel,
    attach_path,
    describe,
    load_attachment,
)
from ..widgets.navbar import NavBar
from .chat_commands import ConversationCommands
from .chat_conversations import ConversationActions

if TYPE_CHECKING:
    from ..app import MullamaApp


class ChatScreen(ConversationActions):
    if TYPE_CHECKING:
        app: MullamaApp  # the App these screens run in

    BINDINGS = [
        Binding("escape", "stop", "Stop reply"),
        Binding("ctrl+n", "new", "New chat"),
        Binding("ctrl+o", "options", "Options"),
        Binding("ctrl+d", "delete", "Delete chat", priority=True),
        Binding("ctrl+l", "focus_list", "Conversations", show=False),
        Binding("ctrl+t", "pick_model", "Model"),
        Binding("ctrl+f", "search", "Search chats", show=False),
        Binding("ctrl+y", "copy_reply", "Copy reply"),
        Binding("ctrl+g", "copy_code", "Copy code block", show=False),
        Binding("ctrl+r", "rename", "Rename chat", show=False),
        Binding("ctrl+s", "export('markdown')", "Export chat", show=False),
    ]
    COMMANDS = {ConversationCommands}

    SIDEBAR_HINT = "[dim]^n new  ^d delete  ^f find\n^r rename  ^s export[/]"

    def __init__(self) -> None:
        super().__init__()
        self.store = ConversationStore(self.app.settings.conversations_dir)
        self.conversations: list[Conversation] = []
        self.current: Conversation | None = None
        self.model_names: list[str] = []
        self.search_text = ""
        self.attachments: list[Attachment] = []  # images for the next message (/image PATH)

    def compose(self) -> ComposeResult:
        yield NavBar("chat")
        with Horizontal(id="chat-body"):
            with Vertical(id="sidebar") as sidebar:
                sidebar.border_title = "Conversations"
                search = ConversationSearch(placeholder="Search titles and text", id="conv-search")
                search.display = False
                yield search
                yield ConversationList(id="conversations")
                yield Label("", id="conv-no-match", markup=False)
                yield Label(self.SIDEBAR_HINT, id="sidebar-hint")
            with Vertical(id="chat-main"):
                with Horizontal(id="chat-bar"):
                    yield Select([], prompt="Choose a model", id="model-picker")
                    yield Label("", id="chat-title", markup=False)
                yield VerticalScroll(id="messages")
                yield AttachmentsLabel(id="attachments")
                yield Input(placeholder="Message… (Enter sends, Esc stops the reply)", id="prompt")
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one("#messages").anchor()
        self.conversations = await asyncio.to_thread(self.store.list)
        await self.show_list()
        if self.conversations:
            await self.open(self.conversations[0])
        else:
            await self.action_new()
        self.query_one("#prompt").focus()  # the models load when the screen shows (resume)
        self.watch(self.app, "connection", self._connection_changed, init=False)
        self.watch(
            self.query_one("#model-picker", Select), "expanded", self._picker_toggled, init=False
        )

    def _connection_changed(self, old: str, new: str) -> None:
        if new in ("local", "remote", "serving") and old != new:  # connected, or back
            self.load_models()

    async def on_screen_resume(self) -> None:
        self.load_models()
        if self.app.chat_model and self.current is not None:
            if self.current.turns:
                await self.action_new()
            self.use_model(self.app.chat_model)
            self.app.chat_model = ""

    # ---------------------------------------------------------------- models

    @work(exclusive=True, group="models")
    async def load_models(self) -> None:
        engine = await self.app.wait_engine()
        try:
            names = [m.name for m in await engine.list_models()]
        except EngineError as exc:
            self.notify(exc.message, title="Cannot list models", severity="error")
            return
        picker = self.query_one("#model-picker", Select)
        wanted = self.app.chat_model or (self.current.model if self.current else "")
        wanted = wanted or self.app.prefs.default_model or (names[0] if names else "")
        self.model_names = names
        with picker.prevent(Select.Changed):
            picker.set_options((n, n) for n in names)
        self.use_model(wanted)
        self.app.chat_model = ""

    def use_model(self, name: str) -> None:
        if not name:
            return
        picker = self.query_one("#model-picker", Select)
        if name not in self.model_names:
            self.model_names.append(name)
            with picker.prevent(Select.Changed):
                picker.set_options((n, n) for n in self.model_names)
        picker.value = name
        if self.current is not None:
            self.current.model = name

    @on(Select.Changed, "#model-picker")
    def _model_picked(self, event: Select.Changed) -> None:
        if self.current is not None and isinstance(event.value, str):
            self.current.model = event.value

    def _picker_toggled(self, expanded: bool) -> None:
        if not expanded:  # a model was picked (or the list closed): back to typing
            # after the refresh: closing with Esc gives the focus back to the Select itself
            self.call_after_refresh(self.query_one("#prompt").focus)

    def action_pick_model(self) -> None:
        self.query_one("#model-picker", Select).action_show_overlay()

    # ---------------------------------------------------------------- conversations

    def listed(self) -> list[Conversation]:
        """The conversations the list shows: those matching the search, if any."""
        return [c for c in self.conversations if c.matches(self.search_text)]

    async def show_list(self) -> None:
        view = self.query_one("#conversations", ListView)
        listed = self.listed()
        await view.clear()
        await view.extend(ListItem(Label(c.title, markup=False), id=f"conv-{c.id}") for c in listed)
        if self.current in listed:
            view.index = listed.index(self.current)
        sidebar = self.query_one("#sidebar")
        searching = bool(self.search_text.strip())
        sidebar.border_title = (
            f"Conversations · {len(listed)} of {len(self.conversations)}"
            if searching
            else "Conversations"
        )
        no_match = self.query_one("#conv-no-match", Label)
        no_match.update(f"Nothing matches “{self.search_text.strip()}”")
        no_match.display = searching and not listed

    # ---------------------------------------------------------------- search

    def action_search(self) -> None:
        search = self.query_one("#conv-search", Input)
        search.display = True
        search.focus()

    @on(Input.Changed, "#conv-search")
    async def _search_changed(self, event: Input.Changed) -> None:
        self.search_text = event.value
        await self.show_list()

    @on(Input.Submitted, "#conv-search")
    def _search_submitted(self) -> None:
        self.action_focus_list()

    async def action_close_search(self) -> None:
        search = self.query_one("#conv-search", Input)
        search.display = False
        if self.search_text:
            self.search_text = ""
            with search.prevent(Input.Changed):
                search.value = ""
            await self.show_list()
        self.query_one("#prompt").focus()

    async def open(self, conversation: Conversation) -> None:
        self.action_stop()
        self.current = conversation
        self.query_one("#chat-title", Label).update(conversation.title)
        messages = self.query_one("#messages", VerticalScroll)
        await messages.remove_children()
        await messages.mount_all(self.message_view(t) for t in conversation.turns)
        messages.scroll_end(animate=False)
        if conversation.model:
            self.use_model(conversation.model)

    def message_view(self, turn: Turn) -> ChatMessage:
        model = self.current.model if self.current is not None else ""
        author = "You" if turn.role == "user" else (model or "assistant")
        if turn.image_names:
            author += "  " + describe(turn.image_names)
        return ChatMessage(turn, author)

    @on(ListView.Selected, "#conversations")
    async def _conversation_selected(self, event: ListView.Selected) -> None:
        conv_id = (event.item.id or "").removeprefix("conv-")
        chosen = next((c for c in self.conversations if c.id == conv_id), None)
        if chosen is not None and chosen is not self.current:
            await self.open(chosen)
        self.query_one("#prompt").focus()

    async def action_new(self) -> None:
        if self.current is not None and not self.current.turns:  # already a fresh one
            self.query_one("#prompt").focus()
            return
        if self.search_text:  # the new conversation would not match it
            await self.action_close_search()
        model = self.current.model if self.current else self.app.prefs.default_model
        conversation = Conversation(model=model, system=self.app.prefs.system_prompt)
        self.conversations.insert(0, conversation)
        await self.open(conversation)
        await self.show_list()
        self.query_one("#prompt").focus()

    @work(exclusive=True, group="dialog")
    async def action_delete(self) -> None:
        c = self.current
        if c is None or not await self.app.push_screen_wait(
            ConfirmDialog(f"Delete the conversation “{escape(c.title)}”?", "Delete")
        ):
            return
        self.conversations.remove(c)  # first: a reply that ends now no longer saves it
        self.current = None
        for worker in self.action_stop():
            with contextlib.suppress(Exception):
                await worker.wait()  # its last save (if it was already saving) is done
        await asyncio.to_thread(self.store.delete, c.id)
        if self.conversations:
            await self.open(self.conversations[0])
        else:
            await self.action_new()
        await self.show_list()

    @work(exclusive=True, group="dialog")
    async def action_options(self) -> None:
        if self.current is None:
            return
        values = await self.app.push_screen_wait(ConversationOptions(self.current))
        if values is not None:
            for key, value in values.items():
                setattr(self.current, key, value)
            await asyncio.to_thread(self.store.save, self.current)

    async def action_on_highlighted(self, action: str) -> None:
        """Open the conversation highlighted in the list, then run ``action`` on it."""
        item = self.query_one("#conversations", ListView).highlighted_child
        conv_id = ((item.id if item else None) or "").removeprefix("conv-")
        chosen = next((c for c in self.conversations if c.id == conv_id), None)
        if chosen is not None and chosen is not self.current:
            await self.open(chosen)
        await self.run_action(action)

    def action_focus_list(self) -> None:
        view = self.query_one("#conversations", ListView)
        if view.index is None and view.children:
            view.index = 0
        view.focus()

    # ---------------------------------------------------------------- sending and streaming

    @on(Input.Submitted, "#prompt")
    async def _send(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text or self.current is None:
            return
        path = attach_path(text)
        if path is not None:
            self.attach(path, event.input)
            return
        if self.replying():
            self.notify("A reply is still streaming: Esc stops it.", severity="warning")
            return
        if not self.current.model:
            self.notify("Choose a model first (ctrl+t).", severity="warning")
            return
        event.input.clear()
        conversation = self.current
        attached, self.attachments = self.attachments, []
        self.query_one(AttachmentsLabel).show([])
        conversation.turns.append(
            Turn(
                "user",
                text,
                images=[a.data for a in attached],
                image_names=[a.name for a in attached],
            )
        )
        conversation.retitle()
        reply = Turn("assistant")
        conversation.turns.append(reply)
        messages = self.query_one("#messages", VerticalScroll)
        view = self.message_view(reply)
        view.add_class("-streaming")
        await messages.mount_all([self.message_view(conversation.turns[-2]), view])
        messages.scroll_end(animate=False)
        self.query_one("#chat-title", Label).update(conversation.title)
        await self.show_list()
        self.stream_reply(conversation, view)

    def attach(self, path: str, prompt: Input) -> None:
        try:
            attachment = load_attachment(path, self.app.settings.vision_max_image_bytes)
        except ValueError as exc:
            self.notify(str(exc), title="Image not attached", severity="error")
            return
        prompt.clear()
        self.attachments.append(attachment)
        self.query_one(AttachmentsLabel).show([a.name for a in self.attachments])

    def replying(self) -> bool:
        return any(w.group == "reply" and not w.is_finished for w in self.workers)

    @work(exclusive=True, group="reply")
    async def stream_reply(self, conversation: Conversation, view: ChatMessage) -> None:
        engine = await self.app.wait_engine()
        view.set_status(await _waiting_status(engine, conversation.model))
        request = ChatRequest(
            conversation.model,
            conversation.messages(),  # the reply being written is empty: not among them
            options=self.app.prefs.options(
                temperature=conversation.temperature,
                top_p=conversation.top_p,
                max_tokens=conversation.max_tokens,
            ),
            think=conversation.think,
        )
        stats = ""
        try:
            # Engine implementations are async generators; the API types them as AsyncIterator
            stream = cast("AsyncGenerator[Event, None]", engine.chat(request))
            async with contextlib.aclosing(stream) as events:
                async for event in events:
                    if isinstance(event, Started):  # loaded and admitted: the prompt is read
                        view.set_status("Thinking…")
                    elif isinstance(event, TextDelta):
                        view.add_text(event.text)
                    elif isinstance(event, ThinkingDelta):
                        view.add_thinking(event.text)
                    elif isinstance(event, Done):
                        stats = reply_stats(
                            event.usage.completion_tokens,
                            event.timings.eval_ns,
                            event.finish_reason,
                        )
        except asyncio.CancelledError:
            stats = "stopped"
            raise
        except EngineError as exc:
            stats = f"error: {exc.message}"
            self.notify(exc.message, title="Reply failed", severity="error", timeout=8)
        finally:
            await asyncio.shield(self.finish_reply(conversation, view, stats))

    async def finish_reply(self, conversation: Conversation, view: ChatMessage, stats: str) -> None:
        try:
            await view.finish(stats)
        finally:
            if conversation in self.conversations:  # not deleted while it was replying
                await asyncio.to_thread(self.store.save, conversation)

    def action_stop(self) -> list:
        """Stop the reply being streamed; returns the workers stopped."""
        stopped = [w for w in self.workers if w.group == "reply" and not w.is_finished]
        for worker in stopped:
            worker.cancel()
        return stopped


async def _waiting_status(engine: Engine, model: str) -> str:
    """What a reply waits for before the engine admits it: its model's load, if not loaded."""
    try:
        running = await engine.running_models()
    except EngineError:
        running = []
    try:
        key = normalize_name(model)
    except EngineError:
        key = model
    if any(same_name(m.name, key) or same_name(m.name, model) for m in running):
        return f"Waiting for {model}…"
    return f"Loading model {model}…"
