"""Language-model backends (OpenAI-compatible servers, local transformers models) behind one
interface, and the structured-output path every backend's answers go through."""
