"""The sample company, its request streams, the replay of days through the flows (truckroll demo), generated
scenarios and the booking simulation: the top edge, beside the CLI."""
