"""The numerical core never imports Qt or napari."""

import subprocess
import sys
import textwrap

# the modules allowed to import Qt/napari: the widgets
UI_MODULES = ("napari_nanocrystal._widgets",)


def test_core_imports_with_qt_and_napari_blocked():
    script = textwrap.dedent(f"""
        import importlib, importlib.util, sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {{"PyQt5", "PyQt6", "PySide2", "PySide6", "qtpy", "napari", "magicgui"}}:
                    raise ImportError("blocked: " + name)
        sys.meta_path.insert(0, Block())
        import pkgutil
        import nc_synthmodel, napari_nanocrystal
        count = 0
        for package in (nc_synthmodel, napari_nanocrystal):
            for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
                if info.name.startswith({UI_MODULES!r}) or info.name.endswith(".__main__"):
                    continue  # the widgets may import Qt; a __main__ module runs its program when imported
                importlib.import_module(info.name)
                count += 1
        print("ok", count)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok") and int(result.stdout.split()[1]) >= 5
