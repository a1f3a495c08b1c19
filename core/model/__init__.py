"""The networks and their weights: ``backbone`` (DINOv2 ViT, EfficientNet-Lite0), ``matcher`` (descriptor
heads, dual-softmax matching), ``presets`` (what each model was trained with), ``checkpoints`` (loading and
saving weights), ``weights`` (the registry of known weights and their download), ``depth_models``
(monocular depth networks) and ``runtime`` (the device; the same numbers at any CPU thread count)."""
