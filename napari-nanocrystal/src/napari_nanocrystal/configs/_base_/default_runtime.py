# Runtime shared by the seed/flow training configs (mmengine).
# Components are looked up in napari_nanocrystal's child registries first, then in mmengine's.
default_scope = "napari_nanocrystal.segmentation.engine"
custom_imports = dict(imports=["napari_nanocrystal.segmentation.engine"], allow_failed_imports=False)

# 'none': one process (CPU).  'pytorch': one process per torchrun worker (gloo on CPU).
launcher = "none"
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
    dist_cfg=dict(backend="gloo"),
)
randomness = dict(seed=0, deterministic=False)

log_level = "INFO"
log_processor = dict(type="LogProcessor", window_size=10, by_epoch=False)
visualizer = dict(type="Visualizer", vis_backends=[dict(type="LocalVisBackend")])

default_hooks = dict(
    runtime_info=dict(type="RuntimeInfoHook"),
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=10),
    param_scheduler=dict(type="ParamSchedulerHook"),
    # iteration checkpoints: resume after an interruption; the last one is always kept
    checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=100, max_keep_ckpts=2, save_last=True),
    sampler_seed=dict(type="DistSamplerSeedHook"),
)
# the JSON training log (<out>/training_log.json) is rewritten every flush_interval iterations
training_log = dict(flush_interval=20)
# used with launcher='pytorch' (one process per torchrun worker): DDP that also runs on the CPU
model_wrapper_cfg = dict(type="SeedFlowDistributedDataParallel", find_unused_parameters=False)
