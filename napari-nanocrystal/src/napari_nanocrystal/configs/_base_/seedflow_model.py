# SeedFlowNet (cellpose CPnet, 3 outputs: flow_y, flow_x, seed logit) and the paper's losses.
model = dict(
    type="SeedFlowModel",
    # cellpose's full width; the CPU presets halve it
    net=dict(nbase=[1, 32, 64, 128, 256], sz=3, diameter_px=30.0, percentiles=(1.0, 99.0), max_pool=True),
    weak_weight=1.0,
    # segment() settings used for validation (the shipped inference defaults)
    test_cfg=dict(confidence_threshold=0.5, flow_threshold=0.4, seed_threshold=0.4, tile_size=512, niter=200),
)
# the size model fitted after training (segment(diameter_px="auto"), size_model.py): styles of
# the training images at this many random zooms each; weak images repeated weak_repeat times.
# None: no size model ("auto" then uses repeated segmentation passes).
size_model = dict(zooms_per_image=3, weak_repeat=4)
