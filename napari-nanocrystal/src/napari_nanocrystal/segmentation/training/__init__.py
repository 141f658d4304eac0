"""Train the seed/flow segmentation network in two stages with an mmengine ``Runner``.

The package: :mod:`.config` (presets, :func:`load_config`), :mod:`.sources` (training data:
collection and the train/validation split rule), :mod:`.stages` (an mmengine config per stage,
image preparation), :mod:`.loop` (:func:`train`: the resumable run), :mod:`.size` (the size-model
fit, :func:`add_size_model`) and :mod:`.evaluate` (:func:`evaluate_model`).  Every name below is
importable from here.

:func:`train` is the headless API (the ``nanocrystal train`` command and the napari Train
widget call it).  A config (an mmengine Python config in ``napari_nanocrystal/configs``,
composed from ``_base_`` parts, or a preset name, see :data:`PRESETS`) describes the model,
data pipeline, optimiser, runtime and the ``stages``; the paper's recipe (Gu et al., ACS Nano
2025) is

1. ``pretrain``: mixed labelled + weakly labelled images (flow MSE + seed BCE on labelled
   crops, seed BCE on the certain pixels of weak crops);
2. ``finetune``: labelled images only, starting from the pretrained weights.

Each stage runs its own ``Runner`` (work dir ``<out>/<stage>``) with an iteration-based loop
(:class:`~.engine.loops.SeedFlowTrainLoop`), a linear learning-rate warm-up followed by a
decay, checkpoints, validation (AP50/75/90 and mean matched IoU on held-out images, see
:class:`~.engine.metric.SeedFlowMetric`) and the JSON training log
``<out>/training_log.json``.  The final network is written with
:meth:`~.network.SeedFlowNet.save` to ``<out>/model.safetensors`` (+ ``model.json``).

Data
----
``labeled``: folders (see :func:`~.data.find_labelled_pairs` for the naming conventions; the
EMPS layout ``images/*.png`` + ``segmaps/*.png`` works as is), single ``*_image.*`` files
with their ``*_instances.*`` partner, ``(image_path, labels_path)`` tuples, or in-memory
``(image, labels)`` array tuples, alone or in a list.  ``weak``: the same with weak labels
(0 background, 1 particle, 255 uncertain; :func:`~.data.find_weak_pairs`).  Validation
(``val=None``): the fixed publication-grouped EMPS split (:func:`~.data.emps_split`) of every folder
with a ``train.csv`` listing; otherwise, with at least 5 labelled images, every 5th one (sorted by
name) is held out; with fewer, the training images are also used for validation (logged).

Resuming
--------
``resume=True`` skips the stages already finished (``<out>/<stage>/done.json``) and
continues an interrupted stage from its last checkpoint (optimizer, scheduler and iteration
counter included).  ``progress(stage, iteration, max_iters, loss)`` is called after every
iteration (and with stage ``'prepare'`` while images are prepared); it stops training
cleanly, with a checkpoint, by returning ``False``, as does setting ``stop_event``.

Checkpoints are mmengine's (model, optimizer, scheduler and log state), stored as tensors
and plain Python values only (:class:`~.engine.hooks.PlainCheckpointHook`), so mmengine's
``torch.load`` reads them with torch's default ``weights_only=True``: no unrestricted
unpickling.  The pretrain → finetune hand-over goes through the safetensors weights.
"""

from __future__ import annotations

from nc_synthmodel.files import json_safe  # public here too (the one JSON sanitiser)

from .config import CONFIGS_DIR, PRESETS, load_config
from .evaluate import evaluate_model
from .loop import ProgressCallback, TrainingResult, train
from .size import add_size_model
from .sources import TrainingData, collect_sources, resolve_data, split_files
from .stages import mix_repeats

__all__ = [
    "PRESETS",
    "CONFIGS_DIR",
    "ProgressCallback",
    "TrainingData",
    "TrainingResult",
    "add_size_model",
    "collect_sources",
    "evaluate_model",
    "json_safe",
    "load_config",
    "mix_repeats",
    "resolve_data",
    "split_files",
    "train",
]
