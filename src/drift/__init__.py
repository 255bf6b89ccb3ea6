"""What the model sees: a version's reference profile and the statistics that compare live traffic with it."""
