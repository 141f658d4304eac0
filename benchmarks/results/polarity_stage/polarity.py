# Issue 15, session 17 (BENCHMARKS.md "Polarity augmentation as a fifth stage"): the polarity run, not adopted.
# A fifth stage from the shipped weights: the run folder's first stage "weakflow" was pre-filled with
# models/default.safetensors + .json and a done.json, then `nanocrystal train THIS.py --resume --out RUN
# --threads 1` with the model card's data (--labeled emps-train, 60 synthetic seed 0; --weak the four weak images).
_base_ = ["../../../napari-nanocrystal/src/napari_nanocrystal/configs/seedflow_default.py"]
polarity_pipeline = [
    dict(type="RandomAffineCrop", crop_size=224, scale_range=(0.5, 2.0), rotate=True, flip=True),
    dict(type="RandomInvert", prob=0.5),
    dict(type="RandomBrightnessContrast", brightness=0.1, contrast_range=(0.8, 1.2)),
    dict(type="RandomGaussianBlur", sigma_range=(0.5, 1.5), prob=0.3),
    dict(type="RandomGaussianNoise", std_range=(0.02, 0.1), prob=0.3),
    dict(type="PackSeedFlowInputs"),
]
stages = dict(
    _delete_=True,
    weakflow=dict(
        data="mixed",
        max_epochs=8,
        warmup=1,
        val_interval=None,
        optim_wrapper=dict(optimizer=dict(lr=0.01)),
        weak_dataset=dict(flow_targets=True),
    ),
    polarity=dict(
        data="mixed",
        max_epochs=4,
        warmup=1,
        val_interval=None,
        optim_wrapper=dict(optimizer=dict(lr=0.01)),
        train_pipeline=polarity_pipeline,
        weak_dataset=dict(flow_targets=True),
    ),
)
