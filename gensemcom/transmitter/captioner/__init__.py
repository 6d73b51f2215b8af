"""BLIP captioner for the background prompt: loading at FP32/FP16/INT8/INT4-mixed (``load``),
Table II beam decoding and the rule that folds the beams into one caption (``generate``), and the
structured prompt that puts the caption on top of the structured description (``prompt``).
"""
