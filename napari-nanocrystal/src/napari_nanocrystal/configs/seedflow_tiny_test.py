# A tiny network and a few iterations on 64x64 crops: for tests and smoke runs only.
_base_ = ["./seedflow_paper.py"]

model = dict(net=dict(nbase=[1, 4, 8, 16]), test_cfg=dict(tile_size=256, niter=50))
train_pipeline = [
    dict(type="RandomAffineCrop", crop_size=64, scale_range=(0.8, 1.25), rotate=True, flip=True),
    dict(type="RandomBrightnessContrast", brightness=0.1, contrast_range=(0.8, 1.2)),
    dict(type="PackSeedFlowInputs"),
]
train_dataloader = dict(batch_size=2)
optim_wrapper = dict(optimizer=dict(lr=0.05))
stages = dict(
    pretrain=dict(max_epochs=None, max_iters=2, warmup=1, val_interval=None),
    finetune=dict(max_epochs=None, max_iters=2, warmup=1, val_interval=None),
)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=3))
training_log = dict(flush_interval=1)
val_dataset = dict(max_images=2)
