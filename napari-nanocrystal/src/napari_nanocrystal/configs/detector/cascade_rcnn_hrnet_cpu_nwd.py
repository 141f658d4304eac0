# CPU preset of the paper-like detector: the same Cascade R-CNN + HRNet + NWD design, narrowed and shortened
# so that it trains from scratch on 2 CPU cores in about half an hour (the w32 preset needs a GPU):
# HRNet widths 16/32/64/128 with one module and one block per stage (~1/20 of w32's backbone compute),
# a 64-channel neck, 256-unit box heads, images at 512 px (longer side up to 768), 1,000 training
# proposals and RoI samples of 256 per image, 800 iterations of 2 images (~2 s each on 2 cores).
# Train: napari_nanocrystal.detection.train_detector('cascade_rcnn_hrnet_cpu_nwd', data, out,
#        nwd_constant=<mean particle size in px at 512 px>).
_base_ = ["./cascade_rcnn_hrnet_nwd.py"]

nwd = dict(type="NWDOverlaps2D", constant=12.8)
channels = 64


def _stage(stds):
    return dict(
        type="Shared2FCBBoxHead",
        in_channels=channels,
        fc_out_channels=256,
        roi_feat_size=7,
        num_classes=1,
        bbox_coder=dict(type="DeltaXYWHBBoxCoder", target_means=[0.0, 0.0, 0.0, 0.0], target_stds=stds),
        reg_class_agnostic=True,
        loss_cls=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
        loss_bbox=dict(type="SmoothL1Loss", beta=1.0, loss_weight=1.0),
    )


def _rcnn(threshold):  # lists replace (not merge) their base: the whole stage is spelled out
    return dict(
        assigner=dict(
            type="MaxIoUAssigner",
            pos_iou_thr=threshold,
            neg_iou_thr=threshold,
            min_pos_iou=threshold,
            match_low_quality=False,
            ignore_iof_thr=-1,
            iou_calculator=nwd,
        ),
        sampler=dict(type="RandomSampler", num=256, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True),
        pos_weight=-1,
        debug=False,
    )


model = dict(
    backbone=dict(
        extra=dict(
            stage1=dict(num_modules=1, num_branches=1, block="BOTTLENECK", num_blocks=(1,), num_channels=(32,)),
            stage2=dict(num_modules=1, num_branches=2, block="BASIC", num_blocks=(1, 1), num_channels=(16, 32)),
            stage3=dict(num_modules=1, num_branches=3, block="BASIC", num_blocks=(1, 1, 1), num_channels=(16, 32, 64)),
            stage4=dict(num_modules=1, num_branches=4, block="BASIC", num_blocks=(1, 1, 1, 1), num_channels=(16, 32, 64, 128)),
        )
    ),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=channels),
    rpn_head=dict(in_channels=channels, feat_channels=channels),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=channels),
        bbox_head=[_stage([0.1, 0.1, 0.2, 0.2]), _stage([0.05, 0.05, 0.1, 0.1]), _stage([0.033, 0.033, 0.067, 0.067])],
    ),
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=1000), rcnn=[_rcnn(0.5), _rcnn(0.6), _rcnn(0.7)]),
    test_cfg=dict(rpn=dict(nms_pre=1000, max_per_img=1000), rcnn=dict(max_per_img=500)),
)

train_pipeline = [
    dict(type="LoadTEMImage"),
    dict(type="LoadAnnotations", with_bbox=True),
    dict(type="PhotoMetricDistortion", brightness_delta=32, contrast_range=(0.5, 1.5), saturation_range=(1.0, 1.0), hue_delta=0),
    dict(type="RandomResize", scale=[(768, 448), (768, 576)], keep_ratio=True),
    dict(type="RandomFlip", prob=[0.25, 0.25, 0.25], direction=["horizontal", "vertical", "diagonal"]),
    dict(type="PackDetInputs"),
]
test_pipeline = [
    dict(type="LoadTEMImage"),
    dict(type="Resize", scale=(768, 512), keep_ratio=True),
    dict(type="PackDetInputs", meta_keys=("img_id", "img_path", "ori_shape", "img_shape", "scale_factor")),
]
train_dataloader = dict(batch_size=2, num_workers=1, dataset=dict(pipeline=train_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))

train_cfg = dict(max_iters=800, val_interval=800)
optim_wrapper = dict(optimizer=dict(lr=0.01))
param_scheduler = [
    dict(type="LinearLR", start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type="MultiStepLR", by_epoch=False, begin=0, end=800, milestones=[550, 720], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(interval=100))
