"""Models: specs and the registry, loading, shapes, packaged real models, memory and GPU sharing."""
