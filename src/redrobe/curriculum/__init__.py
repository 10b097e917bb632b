"""Curriculum: the train/validation split, difficulty scores and buckets."""
