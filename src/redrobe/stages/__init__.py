"""Stage modules: one per DVC stage. Each is glue: parse args, load params, stream
shards through library functions, write outputs atomically, write metrics, track."""
