# Runtime of the detector configs (mmengine Runner, mmdet scope). napari_nanocrystal.detection registers
# NWDOverlaps2D, NWDLoss, ParticleDetDataset and LoadTEMImage in mmdet's registries.
default_scope = "mmdet"
custom_imports = dict(imports=["napari_nanocrystal.detection"], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=50),
    param_scheduler=dict(type="ParamSchedulerHook"),
    # full checkpoints (with optimizer state) in <out>/work for resuming; the weights for inference are
    # exported separately by train_detector (<out>/detector.pth)
    checkpoint=dict(type="CheckpointHook", by_epoch=False, interval=2000, max_keep_ckpts=1, save_last=True),
    sampler_seed=dict(type="DistSamplerSeedHook"),
)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
    dist_cfg=dict(backend="gloo"),
)
vis_backends = [dict(type="LocalVisBackend")]
visualizer = dict(type="DetLocalVisualizer", vis_backends=vis_backends)
log_processor = dict(type="LogProcessor", window_size=50, by_epoch=False)
log_level = "INFO"
load_from = None
resume = False
randomness = dict(seed=0)
