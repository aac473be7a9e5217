"""The three uses of the model, each a pipeline of its own over the same context and engine:
complete (`completion`), explain (`explain`), and edit with an instruction (`edit`)."""
