# Paper-like weak-label detector (Gu, Liang et al., ACS Nano 2025): Cascade R-CNN, HRNetV2p-w32 backbone,
# NWD label assignment; trained from scratch on image + instance-map pairs.
# Train: napari_nanocrystal.detection.train_detector('cascade_rcnn_hrnet_nwd', data, out).
_base_ = [
    "./_base_/cascade_rcnn_hrnet_nwd_model.py",
    "./_base_/particle_data.py",
    "./_base_/schedule_iter.py",
    "./_base_/default_runtime.py",
]
