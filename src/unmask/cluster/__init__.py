"""The Ray engine (`--engine ray`): `prepare`, `detect` and `eval` on a Ray cluster.

The same stage functions as the local engine run inside Ray actors (Ray Data pipelines for
prepare and detect, a pool of model actors for eval), so both engines give the same
manifest and the same scores:

    prepare: tasks -> [CPU actors: unmask.data.prepare.run_chunk, one FaceCropper each]
             -> work records -> the manifest, written by the driver as today
    detect:  blocks of `batch_size` files -> [CPU actors: data.extract.extract_file, one
             FaceCropper each] -> [model actors: inference.detect.score_block, GPU when the
             cluster has one] -> FileResults in input order
    eval:    manifest rows in blocks of `batch_size` -> [model actors: evaluation.report.
             score_rows] -> probabilities in row order

`session.ray_session(address)` joins a cluster or starts a local Ray for the run. Ray is
optional (`pip install 'unmask[cluster]'`); nothing here imports it at module level.
"""
