// Native open dialogs: the desktop app's implementation of DesktopApi.pickPath. The renderer asks
// for a kind of path; the user picks it in the system's own dialog; only the chosen path goes back.
// The page never browses the file system itself.

import { dialog, type BrowserWindow, type OpenDialogOptions } from 'electron';
import type { PickPathRequest } from '../../src-shared/api.js';

const DATASET_EXTENSIONS = ['jsonl', 'json', 'csv', 'tsv', 'parquet'];

export const PICK_OPTIONS: Record<PickPathRequest['kind'], OpenDialogOptions> = {
  'model-folder': {
    title: 'Choose a Hugging Face model folder',
    message: 'The folder with config.json, tokenizer.json and the .safetensors weights',
    buttonLabel: 'Use this model',
    properties: ['openDirectory'],
  },
  'dataset-file': {
    title: 'Choose a dataset file',
    buttonLabel: 'Use this dataset',
    properties: ['openFile'],
    filters: [{ name: 'Datasets', extensions: DATASET_EXTENSIONS }, { name: 'All files', extensions: ['*'] }],
  },
  'adapter-folder': {
    title: 'Choose a PEFT adapter folder',
    message: 'The folder with adapter_config.json and adapter_model.safetensors',
    buttonLabel: 'Import this adapter',
    properties: ['openDirectory'],
  },
  'export-folder': {
    title: 'Choose where to export',
    buttonLabel: 'Export here',
    properties: ['openDirectory', 'createDirectory', 'promptToCreate'],
  },
};

/** Shows the dialog for `req.kind` over `parent`; the chosen path, or null when cancelled. */
export async function pickPath(parent: BrowserWindow | null, req: PickPathRequest): Promise<string | null> {
  const options = PICK_OPTIONS[req.kind];
  const r = parent ? await dialog.showOpenDialog(parent, options) : await dialog.showOpenDialog(options);
  return r.canceled ? null : (r.filePaths[0] ?? null);
}
