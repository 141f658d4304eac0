"""napari dock widgets of napari-nanocrystal (the only modules that import Qt/napari).

One module per widget, each a ``QWidget`` subclass taking ``napari_viewer`` and registered in
``napari.yaml``: :mod:`.calibrate`, :mod:`.segment`, :mod:`.measure`, :mod:`.shapes`,
:mod:`.weak_labels`, :mod:`.train`, :mod:`.recipe`.  They gather inputs, run the headless core
in a ``thread_worker`` (:class:`._common.TaskPanel`) and put the results on layers.
Nothing is imported here, so napari loads only the widget it opens.
"""
