# As cascade_rcnn_hrnet_nwd.py with the lighter HRNetV2p-w18 backbone (mmdet's w18 widths).
_base_ = ["./cascade_rcnn_hrnet_nwd.py"]
model = dict(
    backbone=dict(
        extra=dict(stage2=dict(num_channels=(18, 36)), stage3=dict(num_channels=(18, 36, 72)), stage4=dict(num_channels=(18, 36, 72, 144)))
    ),
    neck=dict(type="HRFPN", in_channels=[18, 36, 72, 144], out_channels=256),
)
