// barton metrics --pred P --label L [--metrics dice,hd95,asd,nsd:2] [--include-background] [--csv
// OUT] Metrics between label images in physical units (spacing from the label's affine). P and L
// are two files, or two folders whose files are matched by name (a prediction may add a suffix:
// case_0_seg).
#include <filesystem>
#include <iostream>
#include <memory>

#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/cli.h"
#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/strings.h"
#include "data/datalist.h"
#include "io/image.h"
#include "metrics/metrics.h"

namespace barton::cli {

namespace fs = std::filesystem;

namespace {

struct MetricSpec {
  std::string column;  // as written in --metrics
  std::string kind;    // dice, hd, hd95, asd, nsd, confusion
  double param = 0;    // nsd tolerance (mm) or percentile
};

std::vector<MetricSpec> parse_metrics(const std::string& list) {
  std::vector<MetricSpec> out;
  for (const auto& raw : split(list, ',')) {
    const auto m = trim(raw);
    if (m.empty()) continue;
    MetricSpec s{m, m, 0};
    if (m == "dice" || m == "asd" || m == "hd") {
    } else if (starts_with(m, "hd") && m.size() > 2) {
      s.kind = "hdp";
      s.param = std::stod(m.substr(2));
    } else if (starts_with(m, "nsd")) {
      s.kind = "nsd";
      const auto colon = m.find(':');
      BARTON_CHECK(colon != std::string::npos,
                   "--metrics: nsd needs a tolerance in mm, e.g. nsd:2");
      s.param = std::stod(m.substr(colon + 1));
    } else if (m == "sensitivity" || m == "specificity" || m == "precision" || m == "f1" ||
               m == "accuracy") {
      s.kind = "confusion";
    } else {
      throw Error("--metrics: unknown metric '" + m +
                  "' (dice, hd, hd95 (any percentile), asd, nsd:TOL, sensitivity, "
                  "specificity, precision, f1, accuracy)");
    }
    out.push_back(s);
  }
  BARTON_CHECK(!out.empty(), "--metrics is empty");
  return out;
}

std::vector<std::pair<std::string, std::string>> pairs(const std::string& pred,
                                                       const std::string& label) {
  std::error_code ec;
  if (!fs::is_directory(label, ec)) return {{pred, label}};
  BARTON_CHECK(fs::is_directory(pred, ec), "--label is a folder, so --pred must be one too: {}",
               pred);
  std::vector<std::string> preds;
  for (const auto& e : fs::directory_iterator(pred)) {
    if (io::is_supported_image_path(e.path().string())) preds.push_back(e.path().string());
  }
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<fs::path> labels;
  for (const auto& e : fs::directory_iterator(label)) labels.push_back(e.path());
  std::sort(labels.begin(), labels.end());
  for (const auto& l : labels) {
    if (!io::is_supported_image_path(l.string())) continue;
    const auto stem = io::image_stem(l.string());
    std::string match;
    for (const auto& p : preds) {
      const auto ps = io::image_stem(p);
      if (ps == stem || starts_with(ps, stem + "_")) {
        match = p;
        break;
      }
    }
    if (match.empty()) throw IoError(l.string(), "no prediction for this label in " + pred);
    out.push_back({match, l.string()});
  }
  BARTON_CHECK(!out.empty(), "no label images in {}", label);
  return out;
}

at::Tensor label_one_hot(const at::Tensor& lab, int64_t classes) {
  return at::one_hot(lab[0].to(at::kLong), classes).movedim(-1, 0).unsqueeze(0);
}

}  // namespace

void setup_metrics(CLI::App& app, Runner& runner) {
  struct Args {
    std::string pred, label, metrics = "dice,hd95,asd", csv;
    std::string datalist, key = "validation", pred_field = "pred", label_field = "label";
    bool include_background = false;
    int64_t classes = 0;
  };
  auto a = std::make_shared<Args>();
  app.add_option("--pred", a->pred, "Predicted label image (or folder)");
  app.add_option("--label", a->label, "Reference label image (or folder)");
  app.add_option("--datalist", a->datalist,
                 "Instead of --pred/--label: a datalist whose cases name both files");
  app.add_option("--key", a->key, "Datalist list to read (default: validation)");
  app.add_option("--pred-field", a->pred_field, "Datalist field of the prediction (default: pred)");
  app.add_option("--label-field", a->label_field,
                 "Datalist field of the reference (default: label)");
  app.add_option("--metrics", a->metrics,
                 "Comma-separated: dice, hd, hd95, asd, nsd:TOL_MM, sensitivity, specificity, "
                 "precision, f1, accuracy");
  app.add_flag("--include-background", a->include_background, "Include label 0 as a class");
  app.add_option("--num-classes", a->classes, "Classes (default: the largest label + 1)");
  app.add_option("--csv", a->csv, "Write one row per case: case,<metric>,...");
  runner = [a]() {
    const auto specs = parse_metrics(a->metrics);
    std::string csv = "case";
    for (const auto& s : specs) csv += "," + s.column;
    csv += "\n";
    std::cout << fmt::format("{:<28}", "case");
    for (const auto& s : specs) std::cout << fmt::format("{:>12}", s.column);
    std::cout << "\n";
    std::vector<std::pair<std::string, std::string>> cases;
    if (!a->datalist.empty()) {
      for (const auto& item : data::load_datalist(a->datalist, a->key)) {
        for (const auto* f : {&a->pred_field, &a->label_field}) {
          if (!item.files.count(*f))
            throw ConfigError(item.where.substr(0, item.where.find(':')),
                              item.where.substr(item.where.find(':') + 1),
                              "case has no field '" + *f + "'");
        }
        cases.push_back({item.files.at(a->pred_field), item.files.at(a->label_field)});
      }
    } else {
      BARTON_CHECK(!a->pred.empty() && !a->label.empty(), "give --pred and --label, or --datalist");
      cases = pairs(a->pred, a->label);
    }
    for (const auto& [pp, lp] : cases) {
      const auto pred = io::read_image(pp), label = io::read_image(lp);
      if (pred.spatial_shape() != label.spatial_shape()) {
        throw ShapeError(fmt::format(
            "{} is [{}] but {} is [{}]; resample the prediction to the label's grid first", pp,
            fmt::join(pred.spatial_shape(), ", "), lp, fmt::join(label.spatial_shape(), ", ")));
      }
      BARTON_CHECK(pred.channels() == 1 && label.channels() == 1,
                   "{} and {} must be single-channel label maps", pp, lp);
      const int64_t classes =
          a->classes > 0
              ? a->classes
              : std::max(pred.data.max().item<int64_t>(), label.data.max().item<int64_t>()) + 1;
      const auto p = label_one_hot(pred.data, std::max<int64_t>(classes, 2)),
                 y = label_one_hot(label.data, std::max<int64_t>(classes, 2));
      const auto spacing = voxel_spacing(label.affine, label.spatial_dims());
      const std::string case_name = io::image_stem(lp);
      std::cout << fmt::format("{:<28}", case_name);
      csv += case_name;
      for (const auto& s : specs) {
        at::Tensor v;
        const bool bg = a->include_background;
        if (s.kind == "dice")
          v = metrics::dice(p, y, bg, true);
        else if (s.kind == "hd")
          v = metrics::hausdorff(p, y, bg, std::nullopt, false, spacing);
        else if (s.kind == "hdp")
          v = metrics::hausdorff(p, y, bg, s.param, false, spacing);
        else if (s.kind == "asd")
          v = metrics::surface_distance(p, y, bg, true, spacing);
        else if (s.kind == "nsd") {
          const int64_t kept = bg ? p.size(1) : p.size(1) - 1;
          v = metrics::surface_dice(p, y, std::vector<double>(kept, s.param), bg, spacing);
        } else {
          const std::string name = s.column == "f1" ? "f1_score" : s.column;
          v = metrics::confusion_metric(metrics::confusion_counts(p, y, bg), name);
        }
        const double value = metrics::reduce(v, "mean").item<double>();
        std::cout << fmt::format("{:>12.4f}", value);
        csv += fmt::format(",{}", value);
      }
      std::cout << "\n";
      csv += "\n";
    }
    if (!a->csv.empty()) {
      write_file_atomic(a->csv, csv);
      std::cout << "wrote " << a->csv << "\n";
    }
    return 0;
  };
}

}  // namespace barton::cli
