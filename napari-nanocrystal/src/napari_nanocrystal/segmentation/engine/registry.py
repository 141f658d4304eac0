"""Child registries of mmengine's root registries for the seed/flow training components.

The scope is this package's import path, so that mmengine's scope switch
(``import <scope>.registry``) finds this module: configs set
``default_scope = 'napari_nanocrystal.segmentation.engine'``.  Every mmengine root registry
gets a child here (as in mmdet), so building from this scope never falls back with a
warning; components not registered here (optimizers, schedulers, standard hooks and loops,
``ConcatDataset``, collate functions) are found in the mmengine roots.
"""

from __future__ import annotations

from mmengine import registry as _root
from mmengine.registry import Registry

__all__ = ["DATASETS", "HOOKS", "LOOPS", "METRICS", "MODELS", "SCOPE", "TRANSFORMS"]

#: Registry scope of this package (``default_scope`` in the configs).
SCOPE = "napari_nanocrystal.segmentation.engine"


def _child(name: str, parent: Registry, module: str | None = None) -> Registry:
    return Registry(name, parent=parent, scope=SCOPE, locations=[f"{SCOPE}.{module}"] if module else [])


MODELS = _child("model", _root.MODELS, "model")
DATASETS = _child("dataset", _root.DATASETS, "datasets")
TRANSFORMS = _child("transform", _root.TRANSFORMS, "transforms")
HOOKS = _child("hook", _root.HOOKS, "hooks")
METRICS = _child("metric", _root.METRICS, "metric")
LOOPS = _child("loop", _root.LOOPS, "loops")

# children without components of ours: they keep the scope switch quiet
RUNNERS = _child("runner", _root.RUNNERS)
RUNNER_CONSTRUCTORS = _child("runner constructor", _root.RUNNER_CONSTRUCTORS)
DATA_SAMPLERS = _child("data sampler", _root.DATA_SAMPLERS)
FUNCTIONS = _child("function", _root.FUNCTIONS)
MODEL_WRAPPERS = _child("model_wrapper", _root.MODEL_WRAPPERS)
WEIGHT_INITIALIZERS = _child("weight initializer", _root.WEIGHT_INITIALIZERS)
OPTIMIZERS = _child("optimizer", _root.OPTIMIZERS)
OPTIM_WRAPPERS = _child("optim_wrapper", _root.OPTIM_WRAPPERS)
OPTIM_WRAPPER_CONSTRUCTORS = _child("optimizer wrapper constructor", _root.OPTIM_WRAPPER_CONSTRUCTORS)
PARAM_SCHEDULERS = _child("parameter scheduler", _root.PARAM_SCHEDULERS)
EVALUATOR = _child("evaluator", _root.EVALUATOR)
TASK_UTILS = _child("task util", _root.TASK_UTILS)
VISUALIZERS = _child("visualizer", _root.VISUALIZERS)
VISBACKENDS = _child("vis_backend", _root.VISBACKENDS)
LOG_PROCESSORS = _child("log_processor", _root.LOG_PROCESSORS)
INFERENCERS = _child("inferencer", _root.INFERENCERS)
STRATEGIES = _child("strategy", _root.STRATEGIES)
