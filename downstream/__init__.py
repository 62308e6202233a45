"""Evaluation of pretrained backbones: what their features transfer to."""
