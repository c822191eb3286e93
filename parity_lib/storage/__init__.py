"""What a run keeps on disk: result files, goldens, fingerprints, provenance, locks."""
