"""Smoke tests in the real QGIS: the plugin zip installs, loads, opens its dialog, and qgis_process sees it.

They hold for today's plugin and for its redesign: only what a user sees is checked (the plugin object in
``qgis.utils.plugins``, its toolbar action, its Processing provider ``loc2`` with ``loc2:localizeimages``, a
visible dialog), plus the harness' own behaviour on a failing script.
"""

from __future__ import annotations

import zipfile

from harness import (
    PLUGIN_NAME,
    install_plugin_from_zip,
    plugins_path,
    read_settings,
    run_qgis_script,
    zip_top_folders,
)

ALGORITHM = "loc2:localizeimages"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_plugin_zip_has_one_top_folder_with_metadata(plugin_zip):
    assert zip_top_folders(plugin_zip) == {PLUGIN_NAME}
    with zipfile.ZipFile(plugin_zip) as zf:
        names = set(zf.namelist())
    assert f"{PLUGIN_NAME}/metadata.txt" in names
    assert f"{PLUGIN_NAME}/__init__.py" in names


def test_install_from_zip_extracts_loads_and_enables_the_plugin(
    profile, plugin_zip, x_display, app_artifacts
):
    run = install_plugin_from_zip(profile, plugin_zip, display=x_display, artifacts_dir=app_artifacts)
    run.check()
    assert run.results["install"] == {
        "plugin_dir": str(plugins_path(profile) / PLUGIN_NAME),
        "installed": True,
        "loaded": True,
        "active": True,
        "enabled_setting": True,
    }
    assert (plugins_path(profile) / PLUGIN_NAME / "metadata.txt").is_file()
    assert read_settings(profile)["PythonPlugins"][PLUGIN_NAME] == "true"  # saved when QGIS exited
    assert run.returncode == 0


LOADED_SCRIPT = """
from qgis.core import QgsApplication
import qgis.utils

results["loaded"] = "loc2" in plugins
results["active"] = "loc2" in qgis.utils.active_plugins
toolbar = iface.pluginToolBar()
loc2_actions = [a for a in toolbar.actions() if "loc2" in (a.text() + a.objectName()).lower()]
results["toolbar_actions"] = [a.text() for a in loc2_actions]
results["toolbar_shown"] = toolbar.isVisible()
results["toolbar_action_usable"] = any(a.isVisible() and a.isEnabled() for a in loc2_actions)
# Its button may sit in the toolbar's overflow menu on a narrow screen: recorded, not asserted.
results["toolbar_button_on_screen"] = any(
    toolbar.widgetForAction(a) is not None and toolbar.widgetForAction(a).isVisible() for a in loc2_actions
)
results["main_window_size"] = [iface.mainWindow().width(), iface.mainWindow().height()]
provider = QgsApplication.processingRegistry().providerById("loc2")
results["provider"] = provider.name() if provider else None
results["algorithms"] = [a.id() for a in provider.algorithms()] if provider else []
results["algorithm_by_id"] = QgsApplication.processingRegistry().algorithmById("loc2:localizeimages") is not None
"""


def test_plugin_from_zip_loads_in_the_desktop(qgis_app):
    run = qgis_app(LOADED_SCRIPT)
    run.check()
    r = run.results
    assert r["loaded"] and r["active"], r
    assert r["toolbar_actions"], "no Loc2 action on the Plugins toolbar"
    assert r["toolbar_shown"] and r["toolbar_action_usable"], r
    assert r["provider"], "no Processing provider 'loc2'"
    assert ALGORITHM in r["algorithms"], r["algorithms"]
    assert r["algorithm_by_id"]
    assert run.startup_s is not None and run.startup_s < 60


DIALOG_SCRIPT = """
from qgis.PyQt.QtWidgets import QApplication

def visible_windows():
    return {w for w in QApplication.topLevelWidgets() if w.isVisible() and w is not iface.mainWindow()}

before = visible_windows()
action = [a for a in iface.pluginToolBar().actions() if "loc2" in (a.text() + a.objectName()).lower()][0]
action.trigger()  # what a click on the toolbar button does
new = wait_until(lambda: visible_windows() - before, timeout=20, message="no window opened")
dialog = max(new, key=lambda w: w.width() * w.height())
wait(0.5)  # let it paint
results["window"] = {"class": dialog.metaObject().className(), "title": dialog.windowTitle(),
                     "visible": dialog.isVisible(), "width": dialog.width(), "height": dialog.height()}
results["same_as_show_dialog"] = getattr(plugins["loc2"], "dialog", dialog) is dialog
results["dialog_shot"] = screenshot("dialog", dialog)
results["screen_shot"] = screenshot("screen", whole_screen=True)
dialog.close()
"""


def test_toolbar_action_opens_a_visible_dialog_and_screenshot(qgis_app):
    run = qgis_app(DIALOG_SCRIPT)
    run.check()
    window = run.results["window"]
    assert window["visible"] and window["width"] > 200 and window["height"] > 150, window
    assert "loc2" in window["title"].lower(), window
    assert run.results["same_as_show_dialog"]
    for key in ("dialog_shot", "screen_shot"):
        shot = run.results[key]
        assert shot["colours"] > 10, f"{key} looks blank: {shot}"
        assert shot["dominant_fraction"] < 0.9, f"{key} is mostly one colour: {shot}"
    names = {p.name for p in run.screenshots}
    assert {"dialog.png", "screen.png"} <= names
    for path in run.screenshots:
        assert path.read_bytes()[:8] == PNG_SIGNATURE and path.stat().st_size > 1000
    assert run.returncode == 0 and not run.crashed


def test_qgis_process_lists_and_describes_the_algorithm(qgis_process):
    listing = qgis_process(["--json", "list"]).check()
    assert listing.json is not None, listing.describe()
    provider = listing.json["providers"].get("loc2")
    assert provider is not None, sorted(listing.json["providers"])
    assert ALGORITHM in provider["algorithms"]
    helped = qgis_process(["--json", "help", ALGORITHM]).check()
    assert helped.json["algorithm_details"]["id"] == ALGORITHM
    assert {"ORTHOPHOTO", "PHOTOS"} <= set(helped.json["parameters"])


def test_a_failing_script_fails_the_run_with_its_traceback(profile, x_display, app_artifacts):
    run = run_qgis_script(
        "results['before'] = 1\nraise ValueError('deliberate failure 42')\n",
        profile,
        display=x_display,
        artifacts_dir=app_artifacts,
        timeout=60,
    )
    assert not run.ok and not run.timed_out and not run.crashed
    assert run.returncode == 1 and run.status == "failed"
    assert "ValueError: deliberate failure 42" in run.report["error"]
    assert run.results == {"before": 1}
    assert "deliberate failure 42" in run.describe()


def test_an_unexpected_modal_dialog_is_rejected_and_fails_the_run(profile, x_display, app_artifacts):
    script = (
        "from qgis.PyQt.QtWidgets import QMessageBox\n"
        "results['answer'] = int(QMessageBox.question(iface.mainWindow(), 'Harness test', 'Blocking?'))\n"
    )
    run = run_qgis_script(script, profile, display=x_display, artifacts_dir=app_artifacts, timeout=60)
    assert not run.timed_out and run.returncode == 0  # QGIS itself went on and exited
    assert not run.ok
    assert [(m["class"], m["title"], m["text"]) for m in run.modal_dialogs] == [
        ("QMessageBox", "Harness test", "Blocking?")
    ]
    assert "modal_00.png" in {p.name for p in run.screenshots}
