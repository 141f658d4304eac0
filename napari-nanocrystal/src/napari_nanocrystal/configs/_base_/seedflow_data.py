# Data pipeline.  Images are rescaled once so that the median particle diameter is
# model.net.diameter_px (rescale_to_diameter=False: native size), normalised, and their flow
# targets cached; training samples are random rotated/scaled/mirrored crops with
# brightness/contrast jitter.  The sources (files or arrays) are filled in by train().
rescale_to_diameter = True
# share of weak samples in the 'mixed' stage: None keeps the natural proportion, a value in
# (0, 1) repeats the weak images to reach it (few but large weak images)
weak_fraction = None

train_pipeline = [
    dict(type="RandomAffineCrop", crop_size=512, scale_range=(0.75, 1.25), rotate=True, flip=True),
    dict(type="RandomBrightnessContrast", brightness=0.1, contrast_range=(0.8, 1.2)),
    dict(type="PackSeedFlowInputs"),
]
val_pipeline = [dict(type="PackSeedFlowInputs", with_labels=True)]

# extra arguments of the datasets (pairs, pipeline, cache_dir come from train())
labelled_dataset = dict(type="LabelledFlowDataset", repeat=1, keep_in_memory=False)
weak_dataset = dict(type="WeakLabelDataset", repeat=1, diameter_px=None)
val_dataset = dict(type="LabelledFlowDataset", test_mode=True, max_images=None)

train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    collate_fn=dict(type="default_collate"),
)
val_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    collate_fn=dict(type="pseudo_collate"),
)
val_cfg = dict(type="ValLoop")
val_evaluator = dict(type="SeedFlowMetric", thresholds=(0.5, 0.75, 0.9))
