# Image + instance-map pairs (ParticleDetDataset; boxes from the instance maps). data_root is filled in by
# napari_nanocrystal.detection.train_detector (a folder in the EMPS layout images/ + segmaps/, or flat
# <name>_image.png + <name>_instances.png). Images are read by LoadTEMImage: gray, 1st/99th percentiles
# to 0/255, repeated to 3 channels. Augmentation: brightness/contrast, scale, flips (TEM has no up).
dataset_type = "ParticleDetDataset"
data_root = ""

train_pipeline = [
    dict(type="LoadTEMImage"),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(type="PhotoMetricDistortion", brightness_delta=32, contrast_range=(0.5, 1.5), saturation_range=(1.0, 1.0), hue_delta=0),
    dict(type="RandomResize", scale=[(1333, 640), (1333, 960)], keep_ratio=True),
    dict(type="RandomFlip", prob=[0.25, 0.25, 0.25], direction=["horizontal", "vertical", "diagonal"]),
    dict(type="PackDetInputs"),
]
test_pipeline = [
    dict(type="LoadTEMImage"),
    dict(type="Resize", scale=(1333, 800), keep_ratio=True),
    dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")),
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type="InfiniteSampler", shuffle=True),
    dataset=dict(
        type=dataset_type, data_root=data_root, min_box_px=2, filter_cfg=dict(filter_empty_gt=True, min_size=8), pipeline=train_pipeline
    ),
)
# used by inference (init_detector / inference_detector take the pipeline and metainfo from here)
test_dataloader = dict(
    batch_size=1,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(type=dataset_type, data_root=data_root, test_mode=True, pipeline=test_pipeline),
)
