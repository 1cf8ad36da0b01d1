"""Serving helpers. `saved_model_predict.py` here runs as a script with TensorFlow only."""
