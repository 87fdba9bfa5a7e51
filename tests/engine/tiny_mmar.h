#pragma once
// The tiny Clara-style MMAR of the engine tests (24^3-ish synthetic CT, a 3-level UNet), shared
// with the export tests.

namespace barton {

// A Clara 4.x training config in the explicit wiring style, small enough for CI: 24^3 volumes,
// 16^3 patches, a 3-level UNet.
inline const char* kTrainConfig = R"json({
  "epochs": 3,
  "learning_rate": 0.002,
  "num_interval_per_valid": 1,
  "amp": false,
  "determinism": {"random_seed": 7},
  "dont_load_ckpt_model": true,
  "train": {
    "loss": {"name": "DiceLoss", "args": {"to_onehot_y": true, "softmax": true}},
    "optimizer": {"name": "Adam", "args": {"params": "#@model.parameters()", "lr": "{learning_rate}"}},
    "lr_scheduler": {"name": "StepLR", "args": {"optimizer": "@optimizer", "step_size": 2, "gamma": 0.5}},
    "model": {"name": "UNet", "args": {"dimensions": 3, "in_channels": 1, "out_channels": 2,
              "channels": [4, 8, 16], "strides": [2, 2], "num_res_units": 1}},
    "pre_transforms": [
      {"name": "LoadImaged", "args": {"keys": ["image", "label"]}},
      {"name": "EnsureChannelFirstd", "args": {"keys": ["image", "label"]}},
      {"name": "Spacingd", "args": {"keys": ["image", "label"], "pixdim": [4.0, 4.0, 4.0], "mode": ["bilinear", "nearest"]}},
      {"name": "ScaleIntensityRanged", "args": {"keys": "image", "a_min": -57, "a_max": 164, "b_min": 0.0, "b_max": 1.0, "clip": true}},
      {"name": "RandCropByPosNegLabeld", "args": {"keys": ["image", "label"], "label_key": "label",
        "spatial_size": [16, 16, 16], "pos": 1, "neg": 1, "num_samples": 2, "image_key": "image", "image_threshold": 0}},
      {"name": "RandShiftIntensityd", "args": {"keys": "image", "offsets": 0.1, "prob": 0.5}},
      {"name": "ToTensord", "args": {"keys": ["image", "label"]}}
    ],
    "dataset": {"name": "CacheDataset", "data_list_file_path": "{DATASET_JSON}", "data_file_base_dir": "{DATA_ROOT}",
                "data_list_key": "training", "args": {"transform": "@pre_transforms", "cache_rate": 1.0, "num_workers": 2}},
    "dataloader": {"name": "DataLoader", "args": {"dataset": "@dataset", "batch_size": 2, "shuffle": true, "num_workers": 1}},
    "inferer": {"name": "SimpleInferer"},
    "handlers": [
      {"name": "CheckpointLoader", "disabled": "{dont_load_ckpt_model}",
       "args": {"load_path": "{MMAR_CKPT}", "load_dict": {"model": "@model"}}},
      {"name": "LrScheduleHandler", "args": {"lr_scheduler": "@lr_scheduler", "print_lr": true}},
      {"name": "ValidationHandler", "args": {"validator": "@evaluator", "epoch_level": true, "interval": "{num_interval_per_valid}"}},
      {"name": "StatsHandler", "rank": 0, "args": {"tag_name": "train_loss",
       "output_transform": "#monai.handlers.from_engine(['loss'], first=True)"}},
      {"name": "TensorBoardStatsHandler", "rank": 0, "args": {"log_dir": "{MMAR_CKPT_DIR}", "tag_name": "train_loss",
       "output_transform": "#monai.handlers.from_engine(['loss'], first=True)"}}
    ],
    "post_transforms": [
      {"name": "Activationsd", "args": {"keys": "pred", "softmax": true}},
      {"name": "AsDiscreted", "args": {"keys": ["pred", "label"], "argmax": [true, false], "to_onehot": 2}}
    ],
    "key_metric": {"name": "Accuracy", "log_label": "train_acc",
                   "args": {"output_transform": "#monai.handlers.from_engine(['pred', 'label'])"}},
    "trainer": {"name": "SupervisedTrainer", "args": {"max_epochs": "{epochs}", "train_data_loader": "@dataloader",
      "network": "@model", "loss_function": "@loss", "optimizer": "@optimizer", "inferer": "@inferer",
      "postprocessing": "@post_transforms", "key_train_metric": "@key_metric", "train_handlers": "@handlers", "amp": "{amp}"}}
  },
  "validate": {
    "pre_transforms": [{"ref": "LoadImaged"}, {"ref": "EnsureChannelFirstd"}, {"ref": "Spacingd"},
                       {"ref": "ScaleIntensityRanged"}, {"ref": "ToTensord"}],
    "dataset": {"name": "Dataset", "data_list_file_path": "{DATASET_JSON}", "data_file_base_dir": "{DATA_ROOT}",
                "data_list_key": "validation", "args": {"transform": "@pre_transforms"}},
    "dataloader": {"name": "DataLoader", "args": {"dataset": "@dataset", "batch_size": 1, "shuffle": false}},
    "inferer": {"name": "SlidingWindowInferer", "args": {"roi_size": [16, 16, 16], "sw_batch_size": 4, "overlap": 0.25}},
    "handlers": [
      {"name": "StatsHandler", "rank": 0, "args": {"output_transform": "lambda x: None"}},
      {"name": "TensorBoardStatsHandler", "rank": 0, "args": {"log_dir": "{MMAR_CKPT_DIR}", "output_transform": "lambda x: None"}},
      {"name": "CheckpointSaver", "rank": 0, "args": {"save_dir": "{MMAR_CKPT_DIR}",
       "save_dict": {"model": "@model", "train_conf": "@conf"}, "save_key_metric": true}}
    ],
    "post_transforms": [{"ref": "Activationsd"}, {"ref": "AsDiscreted"}],
    "key_metric": {"name": "MeanDice", "log_label": "val_mean_dice", "args": {"include_background": false,
                   "output_transform": "#monai.handlers.from_engine(['pred', 'label'])"}},
    "additional_metrics": [{"name": "Accuracy", "log_label": "val_acc",
                   "args": {"output_transform": "#monai.handlers.from_engine(['pred', 'label'])"}}],
    "evaluator": {"name": "SupervisedEvaluator", "args": {"val_data_loader": "@dataloader", "network": "@model",
      "inferer": "@inferer", "postprocessing": "@post_transforms", "key_val_metric": "@key_metric",
      "additional_metrics": "@additional_metrics", "val_handlers": "@handlers", "amp": "{amp}"}}
  }
})json";

inline const char* kEnv =
    R"({"DATA_ROOT": "data", "DATASET_JSON": "data/dataset.json", "MMAR_EVAL_OUTPUT_PATH": "eval",
  "MMAR_CKPT_DIR": "models", "MMAR_CKPT": "models/model.pt", "MMAR_TORCHSCRIPT": "models/model.ts"})";

// Clara's inference config shape, adapted to the tiny model's grid.
inline const char* kInferConfig = R"json({
    "use_gpu": false,
    "model": {"ts_path": "{MMAR_TORCHSCRIPT}"},
    "pre_transforms": [
      {"name": "LoadImaged", "args": {"keys": ["image"]}},
      {"name": "EnsureChannelFirstd", "args": {"keys": ["image"]}},
      {"name": "Spacingd", "args": {"keys": ["image"], "pixdim": [4.0, 4.0, 4.0], "mode": ["bilinear"]}},
      {"name": "ScaleIntensityRanged", "args": {"keys": "image", "a_min": -57, "a_max": 164, "b_min": 0.0, "b_max": 1.0, "clip": true}},
      {"name": "CropForegroundd", "args": {"keys": ["image"], "source_key": "image"}},
      {"name": "ToTensord", "args": {"keys": ["image"]}}
    ],
    "dataset": {"name": "Dataset", "data_list_file_path": "{DATASET_JSON}", "data_file_base_dir": "{DATA_ROOT}",
                "data_list_key": "test", "args": {"transform": "@pre_transforms"}},
    "dataloader": {"name": "DataLoader", "args": {"dataset": "@dataset", "batch_size": 1, "shuffle": false}},
    "inferer": {"name": "SlidingWindowInferer", "args": {"roi_size": [16, 16, 16], "sw_batch_size": 4, "overlap": 0.5}},
    "handlers": [{"name": "StatsHandler", "rank": 0, "args": {"output_transform": "lambda x: None"}}],
    "post_transforms": [
      {"name": "Activationsd", "args": {"keys": "pred", "softmax": true}},
      {"name": "Invertd", "args": {"keys": "pred", "transform": "@pre_transforms", "orig_keys": "image",
                                   "meta_keys": "pred_meta_dict", "nearest_interp": false, "to_tensor": true}},
      {"name": "AsDiscreted", "args": {"keys": "pred", "argmax": true}},
      {"name": "SaveImaged", "args": {"keys": "pred", "meta_keys": "pred_meta_dict", "output_dir": "{MMAR_EVAL_OUTPUT_PATH}",
                                      "resample": false, "squeeze_end_dims": true}}
    ],
    "evaluator": {"name": "SupervisedEvaluator", "args": {"val_data_loader": "@dataloader", "network": "@model",
      "inferer": "@inferer", "postprocessing": "@post_transforms", "val_handlers": "@handlers", "amp": false}}
  })json";

}  // namespace barton
