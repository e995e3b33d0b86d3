"""Engine events as each dialect's wire objects, through one Writer interface."""
