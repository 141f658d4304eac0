# CPU preset: the paper's recipe scaled to 2 CPU cores.
# Half-width SeedFlowNet (nbase [1, 16, 32, 64, 128], 1.65 M parameters, 6.6 MB), images
# rescaled to a 30 px median particle diameter with cached flow targets, 224x224 crops,
# batch 8, a shorter two-stage schedule (_base_/schedule_cpu_small.py).
_base_ = [
    "./_base_/default_runtime.py",
    "./_base_/seedflow_model.py",
    "./_base_/seedflow_data.py",
    "./_base_/schedule_cpu_small.py",
]

model = dict(net=dict(nbase=[1, 16, 32, 64, 128]))
train_pipeline = [
    dict(type="RandomAffineCrop", crop_size=224, scale_range=(0.75, 1.25), rotate=True, flip=True),
    dict(type="RandomBrightnessContrast", brightness=0.1, contrast_range=(0.8, 1.2)),
    dict(type="PackSeedFlowInputs"),
]
# share of weak samples in the mixed stage: the rarer kind of image is repeated to reach it
weak_fraction = 0.2
# validate on 24 evenly spread held-out images at the end of each stage (a full
# evaluation: `nanocrystal evaluate OUT/model.safetensors DATA`)
val_dataset = dict(max_images=24)
default_hooks = dict(checkpoint=dict(interval=50))
