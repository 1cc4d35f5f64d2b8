"""jetson_seg: real-time semantic segmentation for ROS 2 (TF-TRT, TensorFlow, LiteRT)."""
