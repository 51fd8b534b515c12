"""nnjit"""
