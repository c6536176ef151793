"""The detection pipeline (the flagship): render, crops, refiner, detector, evaluation, report, compare."""
