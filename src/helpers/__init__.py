# helpers: retention analytics stages
