"""Example sites for hive."""
