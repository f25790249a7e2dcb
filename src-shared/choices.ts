// The fixed value lists that the run configuration (run-config.ts), the API's argument schemas
// (schemas.ts) and its types (api.ts) share. Plain data with no imports, so that any process, the
// sandboxed preload included, can take them. The back-end modules that act on one of these values
// keep their own list in the order they need (data/formats.ts detects formats in its own order);
// test/shared/choices.test.ts checks that each holds the same values.

/**
 * ONNX Runtime execution providers Finch can run on. The engine keeps the same list
 * (engine/runtime/session.ts PROVIDERS; the renderer cannot import the engine), and
 * services/system.ts fails to compile when the two differ.
 */
export const PROVIDER_NAMES = ['cpu', 'webgpu', 'dml', 'cuda', 'coreml'] as const;
/** A run's provider: one of the above, or 'auto' (the one provider choice decides, and says why). */
export const PROVIDER_CHOICES = ['auto', ...PROVIDER_NAMES] as const;

/** Dataset formats (data/formats.ts); 'preference' rows are pairs of answers (DPO, ORPO). */
export const FORMAT_NAMES = ['alpaca', 'sharegpt', 'messages', 'completion', 'text', 'preference'] as const;
/** The fields a column map assigns dataset columns to. */
export const FORMAT_FIELDS = ['instruction', 'input', 'output', 'system', 'conversations', 'messages', 'prompt', 'completion', 'text', 'chosen', 'rejected'] as const;

/** The projections of a Llama-family layer that can carry a LoRA adapter, in PEFT's order (model/lora.ts). */
export const LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'] as const;

/** What a run optimises: supervised fine-tuning, or a preference loss over pairs of answers (train/objective.ts). */
export const METHODS = ['sft', 'dpo', 'orpo'] as const;
/** Which tokens the loss trains: the completion's only (prompt labels -100), or every token. */
export const TRAIN_ON = ['completions', 'all'] as const;
/** 'auto': the model's chat template if it has one, else Finch's fallback; 'model': require it. */
export const TEMPLATE_CHOICES = ['auto', 'model', 'fallback'] as const;
/** Learning-rate schedules after the warm-up (train/schedule.ts). */
export const SCHEDULES = ['constant', 'linear', 'cosine'] as const;
/** The frozen path's dtype (train/precision.ts); 'auto' asks the adapter. */
export const COMPUTE_DTYPE_CHOICES = ['float32', 'float16', 'auto'] as const;
