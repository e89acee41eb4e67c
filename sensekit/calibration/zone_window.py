"""The interactive zone window: OpenCV's HighGUI forwarding clicks and keys to the ZoneEditor.

Deliberately thin: every rule lives in zone_editor.py (tested without a display), every
pixel drawn comes from preview.py (the same drawing as the PNG). This module only opens the
window, translates events, and asks for polygon names in the terminal.

sensekit depends on opencv-python-headless, which has no HighGUI: on such an install, or
without a display, `require_gui()` refuses with what to do instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt

from sensekit.calibration.preview import render_editor
from sensekit.calibration.zone_editor import ZoneEditor
from sensekit.errors import ConfigError

WINDOW = "sensekit calibrate zones"
ENTER_KEYS = {10, 13}
ESC_KEY = 27


def gui_problem() -> str | None:
    """Why no window can be opened here, or None. Checks OpenCV's build first: a headless
    OpenCV cannot open a window even with a display."""
    build = cv2.getBuildInformation()
    gui_line = next((line for line in build.splitlines() if line.strip().startswith("GUI:")), "")
    if gui_line.split(":", 1)[-1].strip().upper() in ("", "NONE"):
        return (
            "--interactive needs an OpenCV with window support, and this one is "
            "opencv-python-headless (no windows). Define the zones without a window instead: "
            "--zone NAME=x,y;x,y;x,y and --mask NAME=... (normalised 0..1, or pixels with "
            "--pixels), then check the --preview PNG. Or, on a desktop machine, replace the "
            "headless package: pip uninstall opencv-python-headless && pip install "
            "opencv-python (never both: they overwrite each other's cv2)."
        )
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        return (
            "--interactive needs a display and none is set ($DISPLAY is empty): run it in a "
            "desktop session or over `ssh -X`, or define the zones with --zone/--mask "
            "(no window) and check the --preview PNG."
        )
    return None


def require_gui() -> None:
    problem = gui_problem()
    if problem:
        raise ConfigError([problem])


def ask_name_in_terminal(default: str) -> str:
    """The installer names a polygon in the terminal (a HighGUI window has no text field)."""
    try:
        answer = input(f"name for this polygon [{default}]: ")
    except EOFError:
        return default
    return answer.strip() or default


def run_window(
    image: npt.NDArray[np.uint8],
    editor: ZoneEditor,
    ask_name: Callable[[str], str] = ask_name_in_terminal,
) -> ZoneEditor:
    """Show the window until the installer saves or quits; returns the editor in its end state.
    Closing the window counts as quitting."""
    height, width = image.shape[:2]

    def on_mouse(event: int, x: int, y: int, flags: int, param: object) -> None:
        if event == cv2.EVENT_LBUTTONDOWN:
            editor.click(x / width, y / height)

    cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO)
    cv2.resizeWindow(WINDOW, min(width, 1280), min(height, 1280 * height // max(width, 1)))
    cv2.setMouseCallback(WINDOW, on_mouse)
    print(editor.message, file=sys.stderr)
    try:
        while editor.editing:
            cv2.imshow(WINDOW, render_editor(image, editor))
            code = cv2.waitKey(30)
            if cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
                editor.quit()
                break
            if code < 0:
                continue
            code &= 0xFF
            if code in ENTER_KEYS:
                name = ask_name(editor.next_name()) if len(editor.draft) >= 3 else None
                print(editor.close(name), file=sys.stderr)
            elif code == ESC_KEY:
                print(editor.quit(), file=sys.stderr)
            else:
                print(editor.key(chr(code)), file=sys.stderr)
    finally:
        cv2.destroyWindow(WINDOW)
    return editor
