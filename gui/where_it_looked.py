"""A result card's "Where it looked" button: the parts of the photo the model's answer depends on, as a heat map.

The engine thread computes it (engine.explain: each part of the picture hidden in turn, about 50 forward passes);
the card shows the picture the model saw with the heat drawn over it, in the thumbnail's place, and says in words
how much the warmest part matters. The button looks for the top class, a click on another class's bar for that one;
the button, now "Show the photo", or choosing another result shows the photo again.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Slot
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QLabel, QPushButton, QVBoxLayout, QWidget

from gui.engine_messages import ExplainedImage, ExplainProgress, Failure
from gui.engine_worker import EngineBridge
from gui.pictures_in_memory import PastedPictures
from gui.picture_menu import PICTURE_TIP, PictureMenu, heat_map_name
from gui.result_widgets import ERROR_COLOR, ResultCard

if TYPE_CHECKING:
    import numpy as np

    from engine.results import ImageResult

BUTTON_TEXT = "Where it looked"
SHOWN_TEXT = "Show the photo"  # while the heat map is shown: what pressing the button again does
BUTTON_TIP = (
    "Shade the parts of the photo the top class depends on: each part of what the model sees is hidden in turn, "
    "and warm colours mark the parts whose hiding lowers its confidence most. Click another class's bar (or Tab "
    "to the bars and use the arrow keys) to see where the model looked for that one."
)
OTHERS_HINT = "Click another class to see where it looked for that one."
BAR_TIP = "Click to see where the model looked for this class."


class WhereItLooked(QWidget):
    """Below a card's confidence bars: the button, and the words that go with the heat map. A click on a bar looks
    for that class; the heat maps of the result shown are kept, so going back to one is instant."""

    def __init__(self, card: ResultCard, bridge: EngineBridge, pasted: PastedPictures) -> None:
        super().__init__(card)
        self.card = card
        self.bridge = bridge
        self.pasted = pasted
        self.button = QPushButton(BUTTON_TEXT)
        self.button.setCheckable(True)
        self.button.setToolTip(BUTTON_TIP)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        self.caption.setTextFormat(Qt.TextFormat.PlainText)
        # As wide as the card's title at most, and as tall as its lines there: a word-wrapped label's height
        # depends on its width, which the stacked pages around the card do not ask for, so the card would overlap.
        self.caption.setFixedWidth(card.THUMBNAIL_BOX + 120)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(self.button, 0, Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.caption)
        self._request_id: int | None = None
        self._result: ImageResult | None = None  # the result the heat maps below are for
        self._maps: dict[int, tuple[np.ndarray, str]] = {}  # bar row -> (overlay, caption)
        self.row: int | None = None  # the bar whose heat map is shown or being made
        self._on_card: tuple[np.ndarray, str] | None = None  # the heat map on the card and its class, kept there
        # across a model switch, for its right-click menu
        card.add_below_bars(self)
        card.result_shown.connect(self._reset)
        card.bars.make_clickable(BAR_TIP)
        card.bars.row_clicked.connect(self.look_for)
        self.picture_menu = PictureMenu(card.thumbnail, self._map_shown, self._map_name, self._photo_folder)
        self.picture_menu.failed.connect(lambda message, hint: self._say(f"{message} {hint}", tip="", error=True))
        self.button.toggled.connect(self._toggled)
        bridge.worker.explain_progressed.connect(self._on_progress)
        bridge.worker.explained.connect(self._on_explained)
        bridge.worker.explain_failed.connect(self._on_failed)
        bridge.worker.model_loaded.connect(self._forget_maps)  # made by the model used before
        self._reset()

    @property
    def looking(self) -> bool:
        return self._request_id is not None

    @Slot(int)
    def look_for(self, row: int) -> None:
        """Show where the model looked for the class of bar `row` (0 is the top class); the photo again if that
        heat map is the one shown."""
        result = self.card.result
        if result is None or row >= len(result.top):
            return
        if row == self.row:
            if not self.looking:
                self._show_photo()
            return
        self._cancel_request()
        self.row = row
        self.card.bars.mark(row)
        self._set_checked(True)
        if row in self._maps:
            self._show_map()
            return
        top = result.top[row]
        self._request_id = self.bridge.request_explain(result.path, top.index, top.label, self.pasted.get(result.path))
        self.button.setText("Looking…")
        self.caption.hide()

    def _map_shown(self) -> np.ndarray | None:
        """The heat map on the card, for its right-click menu (None while the photo is shown or another is made)."""
        return None if self._on_card is None or self.looking else self._on_card[0]

    def _map_name(self) -> str:
        return heat_map_name(self.card.result.path, self._on_card[1])

    def _photo_folder(self) -> str:
        path = Path(self.card.result.path)
        return str(path.parent) if path.is_absolute() else ""  # a pasted picture has no folder

    @Slot()
    def _reset(self) -> None:
        """The card shows a result again: the same one (rows arriving around it in a sorted table) keeps its heat
        map, or its request; another one (or none) starts afresh."""
        result = self.card.result
        if result is not None and result is self._result and (self.row in self._maps or self.looking):
            self.card.bars.mark(self.row)
            if not self.looking:
                self._on_card = self._maps[self.row][0], self.card.result.top[self.row].label
                self.card.show_picture(self._on_card[0])
            return
        if result is not self._result:
            self._cancel_request()
            self._result = result
            self._maps = {}
        self.row = None
        self._on_card = None
        self._uncheck()
        self.card.thumbnail.setToolTip("")  # the photo: nothing to copy or save here
        self.setVisible(result is not None and bool(result.top))
        self.caption.hide()

    @Slot(bool)
    def _toggled(self, on: bool) -> None:
        if on:
            self.look_for(0)
        else:
            self._show_photo()

    def _show_photo(self) -> None:
        self._cancel_request()
        self.row = None
        if self.card.result is not None:
            self.card.show_result(self.card.result)  # the photo again; the card's result_shown resets the rest

    def _show_map(self) -> None:
        overlay, caption = self._maps[self.row]
        if self.row == 0 and len(self.card.result.top) > 1:
            caption += f" {OTHERS_HINT}"
        self.button.setText(SHOWN_TEXT)
        self._on_card = overlay, self.card.result.top[self.row].label
        self.card.show_picture(overlay)
        self.card.thumbnail.setToolTip(PICTURE_TIP)
        self._say(caption, tip=BUTTON_TIP, error=False)

    @Slot(object)
    def _on_progress(self, event: ExplainProgress) -> None:
        if event.request_id == self._request_id and event.total:
            self.button.setText(f"Looking… {round(100 * event.done / event.total)} %")

    @Slot(object)
    def _on_explained(self, event: ExplainedImage) -> None:
        if event.request_id != self._request_id:
            return  # another card's, or one this card no longer waits for
        self._request_id = None
        self._maps[self.row] = (event.overlay, event.caption)
        self._show_map()

    @Slot(object)
    def _on_failed(self, failure: Failure) -> None:
        if failure.request_id != self._request_id:
            return
        self._request_id = None
        self.row = None
        self.card.bars.mark(None)
        self._uncheck()
        if not failure.cancelled:
            self._say(f"{failure.message} {failure.hint}".strip(), tip="", error=True)

    def _say(self, text: str, tip: str, error: bool) -> None:
        self.caption.setText(text)
        self.caption.setFixedHeight(self.caption.heightForWidth(self.caption.width()))
        self.caption.setToolTip(tip)
        if error:
            self.caption.setStyleSheet(f"color: {ERROR_COLOR.name()};")
        else:
            self.caption.setStyleSheet("")
            self.caption.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        self.caption.show()

    def _set_checked(self, checked: bool) -> None:
        """The button's state, set without toggling: not a press (a bar's click chose what to look for)."""
        self.button.blockSignals(True)
        self.button.setChecked(checked)
        self.button.blockSignals(False)

    def _uncheck(self) -> None:
        self._set_checked(False)
        self.button.setText(BUTTON_TEXT)

    @Slot(object)
    def _forget_maps(self, _info: object = None) -> None:
        self._maps = {}  # the one on the card stays there until the photo is shown again

    def _cancel_request(self) -> None:
        if self._request_id is not None:
            self.bridge.cancel_explain(self._request_id)
            self._request_id = None
