#include "optim/optim.h"

#include <torch/torch.h>

#include <any>
#include <cmath>

#include "core/errors.h"

namespace barton::optim {

namespace {

std::vector<double> pair_arg(const ConfigNode& a, const char* k, std::vector<double> def) {
  if (!a.has(k) || a.at(k).is_null()) return def;
  auto v = a.at(k).as<std::vector<double>>();
  if (v.size() != 2) throw a.at(k).error("expected two values");
  return v;
}

template <typename Opt, typename Options>
class TorchOpt final : public Optimizer {
 public:
  TorchOpt(std::string name, const std::vector<ParamGroup>& groups, Options o) : name_(std::move(name)), opt_(make_groups(groups, o), o) {
    for (auto& g : opt_.param_groups()) initial_.push_back(static_cast<Options&>(g.options()).lr());
  }
  static std::vector<torch::optim::OptimizerParamGroup> make_groups(const std::vector<ParamGroup>& groups, const Options& o) {
    std::vector<torch::optim::OptimizerParamGroup> out;
    for (const auto& g : groups) {
      auto opts = std::make_unique<Options>(o);
      if (g.lr) opts->lr(*g.lr);
      if (g.weight_decay) opts->weight_decay(*g.weight_decay);
      out.emplace_back(g.params, std::move(opts));
    }
    return out;
  }
  std::string name() const override { return name_; }
  void step() override { opt_.step(); }
  void zero_grad() override { opt_.zero_grad(); }
  std::size_t num_groups() const override { return opt_.param_groups().size(); }
  double lr(std::size_t g) const override { return static_cast<const Options&>(opt_.param_groups().at(g).options()).lr(); }
  void set_lr(double lr, std::size_t g) override { static_cast<Options&>(opt_.param_groups().at(g).options()).lr(lr); }
  torch::optim::Optimizer* torch_optimizer() override { return &opt_; }
  std::vector<std::pair<std::string, torch::Tensor>> state() const override {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    torch::serialize::OutputArchive ar;
    opt_.save(ar);
    std::ostringstream ss;
    ar.save_to(ss);
    const auto s = ss.str();
    auto t = torch::empty({static_cast<int64_t>(s.size())}, torch::kUInt8);
    std::memcpy(t.data_ptr(), s.data(), s.size());
    out.push_back({"torch_optimizer", t});
    return out;
  }
  void load_state(const std::vector<std::pair<std::string, torch::Tensor>>& s) override {
    for (const auto& [k, t] : s) {
      if (k != "torch_optimizer") continue;
      std::string bytes(static_cast<const char*>(t.data_ptr()), static_cast<std::size_t>(t.numel()));
      std::istringstream ss(bytes);
      torch::serialize::InputArchive ar;
      ar.load_from(ss);
      opt_.load(ar);
    }
  }

 private:
  std::string name_;
  Opt opt_;
};

/// MONAI's Novograd (monai/optimizers/novograd.py): a layer-wise second moment.
class Novograd final : public Optimizer {
 public:
  struct Options {
    double lr = 1e-3, beta1 = 0.9, beta2 = 0.98, eps = 1e-8, weight_decay = 0;
    bool grad_averaging = false, amsgrad = false;
  };
  Novograd(const std::vector<ParamGroup>& groups, Options o) : o_(o) {
    for (std::size_t g = 0; g < groups.size(); ++g) {
      lrs_.push_back(groups[g].lr.value_or(o.lr));
      wds_.push_back(groups[g].weight_decay.value_or(o.weight_decay));
      for (const auto& p : groups[g].params) {
        params_.push_back(p);
        group_of_.push_back(g);
      }
    }
    initial_ = lrs_;
    exp_avg_.resize(params_.size());
    exp_avg_sq_.resize(params_.size());
    max_sq_.resize(params_.size());
  }
  std::string name() const override { return "Novograd"; }
  void zero_grad() override {
    for (auto& p : params_) {
      if (p.grad().defined()) {
        p.grad().detach_();
        p.grad().zero_();
      }
    }
  }
  std::size_t num_groups() const override { return lrs_.size(); }
  double lr(std::size_t g) const override { return lrs_.at(g); }
  void set_lr(double lr, std::size_t g) override { lrs_.at(g) = lr; }
  void step() override {
    torch::NoGradGuard g;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      auto& p = params_[i];
      if (!p.grad().defined()) continue;
      auto grad = p.grad();
      const auto norm = grad.pow(2).sum();
      if (!exp_avg_[i].defined()) {
        exp_avg_[i] = torch::zeros_like(p);
        exp_avg_sq_[i] = torch::zeros({}, p.options());
        if (o_.amsgrad) max_sq_[i] = torch::zeros({}, p.options());
      }
      // MONAI: v = ||g||^2 whenever v is exactly 0 (the first step), else the running average.
      if (exp_avg_sq_[i].item<double>() == 0.0) exp_avg_sq_[i].copy_(norm);
      else exp_avg_sq_[i].mul_(o_.beta2).add_(norm, 1 - o_.beta2);
      torch::Tensor denom;
      if (o_.amsgrad) {
        max_sq_[i] = torch::max(max_sq_[i], exp_avg_sq_[i]);
        denom = max_sq_[i].sqrt().add_(o_.eps);
      } else {
        denom = exp_avg_sq_[i].sqrt().add_(o_.eps);
      }
      grad = grad / denom;
      const double wd = wds_[group_of_[i]];
      if (wd != 0) grad = grad.add(p, wd);
      if (o_.grad_averaging) grad = grad * (1 - o_.beta1);
      exp_avg_[i].mul_(o_.beta1).add_(grad);
      p.add_(exp_avg_[i], -lrs_[group_of_[i]]);
    }
  }
  std::vector<std::pair<std::string, torch::Tensor>> state() const override {
    std::vector<std::pair<std::string, torch::Tensor>> out;
    for (std::size_t i = 0; i < params_.size(); ++i) {
      if (!exp_avg_[i].defined()) continue;
      out.push_back({"exp_avg." + std::to_string(i), exp_avg_[i]});
      out.push_back({"exp_avg_sq." + std::to_string(i), exp_avg_sq_[i]});
      if (max_sq_[i].defined()) out.push_back({"max_exp_avg_sq." + std::to_string(i), max_sq_[i]});
    }
    return out;
  }
  void load_state(const std::vector<std::pair<std::string, torch::Tensor>>& s) override {
    for (const auto& [k, t] : s) {
      const auto dot = k.find('.');
      const auto i = std::stoul(k.substr(dot + 1));
      const auto name = k.substr(0, dot);
      if (name == "exp_avg") exp_avg_.at(i) = t.clone();
      else if (name == "exp_avg_sq") exp_avg_sq_.at(i) = t.clone();
      else max_sq_.at(i) = t.clone();
    }
  }

 private:
  std::vector<torch::Tensor> params_;
  std::vector<std::size_t> group_of_;
  std::vector<double> lrs_, wds_;
  Options o_;
  std::vector<torch::Tensor> exp_avg_, exp_avg_sq_, max_sq_;
};

std::vector<ParamGroup> params_from(const BuildContext& ctx, const ConfigNode& a) {
  if (ctx.lookup) {
    auto any = ctx.lookup("model.named_parameters()");
    if (any.has_value()) return param_groups(a, std::any_cast<std::vector<std::pair<std::string, torch::Tensor>>>(any));
  }
  throw a.error("the optimizer needs the model's parameters (\"params\": \"#@model.parameters()\")");
}

}  // namespace

std::vector<ParamGroup> param_groups(const ConfigNode& a, const std::vector<std::pair<std::string, torch::Tensor>>& named) {
  std::vector<ParamGroup> groups(1);
  std::vector<std::string> matches;
  if (a.given("param_groups")) {
    const auto list = a.at("param_groups");
    if (!list.is_array()) throw list.error("expected a list of {\"match\", \"lr\", \"weight_decay\"}");
    for (std::size_t i = 0; i < list.size(); ++i) {
      const auto g = list.at(i);
      g.expect_only_keys({"match", "lr", "weight_decay"});
      ParamGroup pg;
      if (g.has("lr")) pg.lr = g.require<double>("lr");
      if (g.has("weight_decay")) pg.weight_decay = g.require<double>("weight_decay");
      groups.push_back(pg);
      matches.push_back(g.require<std::string>("match"));
    }
  }
  for (const auto& [name, t] : named) {
    std::size_t target = 0;
    for (std::size_t m = 0; m < matches.size(); ++m) {
      if (name.rfind(matches[m], 0) == 0) {
        target = m + 1;
        break;
      }
    }
    groups[target].params.push_back(t);
  }
  for (std::size_t m = 0; m < matches.size(); ++m) {
    if (groups[m + 1].params.empty()) {
      const auto g = a.at("param_groups").at(m).at("match");
      throw g.error("no parameter name starts with '" + matches[m] + "'");
    }
  }
  if (groups[0].params.empty()) groups.erase(groups.begin());
  return groups;
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& name, const ConfigNode& a, std::vector<torch::Tensor> params) {
  ParamGroup g;
  g.params = std::move(params);
  return make_optimizer(name, a, std::vector<ParamGroup>{g});
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& name, const ConfigNode& a, std::vector<ParamGroup> params) {
  const double lr = a.get_or("lr", 1e-3);
  if (lr < 0) throw a.at("lr").error("must be non-negative");
  if (name == "Adam" || name == "AdamW") {
    const auto betas = pair_arg(a, "betas", {0.9, 0.999});
    if (name == "Adam") {
      auto o = torch::optim::AdamOptions(lr).betas({betas[0], betas[1]}).eps(a.get_or("eps", 1e-8))
                   .weight_decay(a.get_or("weight_decay", 0.0)).amsgrad(a.get_or("amsgrad", false));
      return std::make_unique<TorchOpt<torch::optim::Adam, torch::optim::AdamOptions>>(name, std::move(params), o);
    }
    auto o = torch::optim::AdamWOptions(lr).betas({betas[0], betas[1]}).eps(a.get_or("eps", 1e-8))
                 .weight_decay(a.get_or("weight_decay", 0.01)).amsgrad(a.get_or("amsgrad", false));
    return std::make_unique<TorchOpt<torch::optim::AdamW, torch::optim::AdamWOptions>>(name, std::move(params), o);
  }
  if (name == "SGD") {
    const double m = a.get_or("momentum", 0.0);
    const bool nesterov = a.get_or("nesterov", false);
    const double damp = a.get_or("dampening", 0.0);
    if (nesterov && (m <= 0 || damp != 0)) {
      throw ConfigError(a.source(), a.pointer() + "/nesterov", "Nesterov momentum needs momentum > 0 and dampening 0");
    }
    auto o = torch::optim::SGDOptions(a.require<double>("lr")).momentum(m).dampening(damp)
                 .weight_decay(a.get_or("weight_decay", 0.0)).nesterov(nesterov);
    return std::make_unique<TorchOpt<torch::optim::SGD, torch::optim::SGDOptions>>(name, std::move(params), o);
  }
  if (name == "Novograd") {
    Novograd::Options o;
    o.lr = lr;
    const auto betas = pair_arg(a, "betas", {0.9, 0.98});
    o.beta1 = betas[0];
    o.beta2 = betas[1];
    o.eps = a.get_or("eps", 1e-8);
    o.weight_decay = a.get_or("weight_decay", 0.0);
    o.grad_averaging = a.get_or("grad_averaging", false);
    o.amsgrad = a.get_or("amsgrad", false);
    return std::make_unique<Novograd>(std::move(params), o);
  }
  throw Error("unknown optimizer '" + name + "'");
}

void register_optimizers(OptimizerRegistry& r) {
  for (const char* n : {"Adam", "AdamW", "SGD", "Novograd"}) {
    r.implement(n, [n](const ConfigNode& a, const BuildContext& ctx) { return make_optimizer(n, a, params_from(ctx, a)); });
  }
}

// ---------------------------------------------------------------- schedules

namespace {

/// lr_g(t) = base_g * factor(t) (torch's LambdaLR-style closed forms).
class FactorScheduler final : public LrScheduler {
 public:
  FactorScheduler(std::string name, Optimizer* opt, std::function<double(int64_t, double base)> lr_at)
      : name_(std::move(name)), opt_(opt), lr_at_(std::move(lr_at)) {
    apply();
  }
  std::string name() const override { return name_; }
  void step(std::optional<double>) override {
    ++t_;
    apply();
  }
  void set_step(int64_t t) override {
    t_ = t;
    apply();
  }

 private:
  void apply() {
    for (std::size_t g = 0; g < opt_->num_groups(); ++g) opt_->set_lr(lr_at_(t_, opt_->initial_lrs().at(g)), g);
  }
  std::string name_;
  Optimizer* opt_;
  std::function<double(int64_t, double)> lr_at_;
};

class Plateau final : public LrScheduler {
 public:
  struct Options {
    bool max_mode = false;
    double factor = 0.1, threshold = 1e-4, eps = 1e-8, min_lr = 0;
    int64_t patience = 10, cooldown = 0;
    bool relative = true;
  };
  Plateau(Optimizer* opt, Options o) : opt_(opt), o_(o) {}
  std::string name() const override { return "ReduceLROnPlateau"; }
  void set_step(int64_t t) override { t_ = t; }
  void step(std::optional<double> metric) override {
    ++t_;
    if (!metric) return;
    const double m = *metric;
    bool better;
    if (!have_best_) {
      better = true;
    } else if (o_.relative) {
      better = o_.max_mode ? m > best_ * (1 + o_.threshold) : m < best_ * (1 - o_.threshold);
    } else {
      better = o_.max_mode ? m > best_ + o_.threshold : m < best_ - o_.threshold;
    }
    if (better) {
      best_ = m;
      have_best_ = true;
      bad_ = 0;
    } else {
      ++bad_;
    }
    if (cooldown_left_ > 0) {
      --cooldown_left_;
      bad_ = 0;
    }
    if (bad_ > o_.patience) {
      for (std::size_t g = 0; g < opt_->num_groups(); ++g) {
        const double old = opt_->lr(g), nlr = std::max(old * o_.factor, o_.min_lr);
        if (old - nlr > o_.eps) opt_->set_lr(nlr, g);
      }
      cooldown_left_ = o_.cooldown;
      bad_ = 0;
    }
  }

 private:
  Optimizer* opt_;
  Options o_;
  double best_ = 0;
  bool have_best_ = false;
  int64_t bad_ = 0, cooldown_left_ = 0;
};

}  // namespace

std::unique_ptr<LrScheduler> make_scheduler(const std::string& name, const ConfigNode& a, Optimizer* opt) {
  BARTON_CHECK(opt != nullptr, "a schedule needs an optimizer");
  const double kPi = 3.14159265358979323846;
  if (name == "StepLR") {
    const auto step = a.require<int64_t>("step_size");
    const double gamma = a.get_or("gamma", 0.1);
    if (step < 1) throw a.at("step_size").error("must be at least 1");
    return std::make_unique<FactorScheduler>(name, opt, [=](int64_t t, double b) { return b * std::pow(gamma, static_cast<double>(t / step)); });
  }
  if (name == "MultiStepLR") {
    auto ms = a.require<std::vector<int64_t>>("milestones");
    const double gamma = a.get_or("gamma", 0.1);
    return std::make_unique<FactorScheduler>(name, opt, [=](int64_t t, double b) {
      int64_t k = 0;
      for (auto m : ms) k += t >= m;
      return b * std::pow(gamma, static_cast<double>(k));
    });
  }
  if (name == "ExponentialLR") {
    const double gamma = a.require<double>("gamma");
    return std::make_unique<FactorScheduler>(name, opt, [=](int64_t t, double b) { return b * std::pow(gamma, static_cast<double>(t)); });
  }
  if (name == "CosineAnnealingLR") {
    const auto T = a.require<int64_t>("T_max");
    const double eta_min = a.get_or("eta_min", 0.0);
    if (T < 1) throw a.at("T_max").error("must be at least 1");
    return std::make_unique<FactorScheduler>(name, opt, [=](int64_t t, double b) {
      return eta_min + (b - eta_min) * (1 + std::cos(kPi * static_cast<double>(t) / static_cast<double>(T))) / 2;
    });
  }
  if (name == "WarmupCosineSchedule") {
    const auto warm = a.require<int64_t>("warmup_steps");
    const auto total = a.require<int64_t>("t_total");
    const double end_lr = a.get_or("end_lr", 0.0), cycles = a.get_or("cycles", 0.5), wm = a.get_or("warmup_multiplier", 0.0);
    return std::make_unique<FactorScheduler>(name, opt, [=](int64_t t, double b) {
      double f;
      if (t < warm) {
        f = wm + (1 - wm) * static_cast<double>(t) / std::max<double>(1.0, static_cast<double>(warm));
        return b * f;
      }
      const double progress = static_cast<double>(t - warm) / std::max<double>(1.0, static_cast<double>(total - warm));
      f = std::max(0.0, 0.5 * (1 + std::cos(kPi * cycles * 2.0 * progress)));
      return std::max(b * f, end_lr);
    });
  }
  if (name == "PolynomialLR") {
    const auto total = a.get_or<int64_t>("total_iters", 5);
    const double power = a.get_or("power", 1.0);
    return std::make_unique<FactorScheduler>(name, opt, [=](int64_t t, double b) {
      const double frac = 1.0 - static_cast<double>(std::min(t, total)) / static_cast<double>(total);
      return b * std::pow(frac, power);
    });
  }
  if (name == "LinearLR") {
    const double s = a.get_or("start_factor", 1.0 / 3.0), e = a.get_or("end_factor", 1.0);
    const auto total = a.get_or<int64_t>("total_iters", 5);
    return std::make_unique<FactorScheduler>(name, opt, [=](int64_t t, double b) {
      return b * (s + (e - s) * static_cast<double>(std::min(t, total)) / static_cast<double>(total));
    });
  }
  if (name == "ReduceLROnPlateau") {
    Plateau::Options o;
    const auto mode = a.get_or<std::string>("mode", "min");
    if (mode != "min" && mode != "max") throw a.at("mode").error("must be min or max");
    o.max_mode = mode == "max";
    o.factor = a.get_or("factor", 0.1);
    if (o.factor >= 1.0) throw a.at("factor").error("must be < 1");
    o.patience = a.get_or<int64_t>("patience", 10);
    o.threshold = a.get_or("threshold", 1e-4);
    o.relative = a.get_or<std::string>("threshold_mode", "rel") == "rel";
    o.cooldown = a.get_or<int64_t>("cooldown", 0);
    if (a.has("min_lr") && a.at("min_lr").is_number()) o.min_lr = a.at("min_lr").as<double>();
    o.eps = a.get_or("eps", 1e-8);
    return std::make_unique<Plateau>(opt, o);
  }
  throw Error("unknown LR schedule '" + name + "'");
}

void register_schedulers(SchedulerRegistry& r) {
  for (const char* n : {"StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "WarmupCosineSchedule", "PolynomialLR",
                        "LinearLR", "ReduceLROnPlateau"}) {
    r.implement(n, [n](const ConfigNode& a, const BuildContext& ctx) -> std::unique_ptr<LrScheduler> {
      Optimizer* opt = nullptr;
      if (ctx.lookup) {
        auto any = ctx.lookup("optimizer");
        if (any.has_value()) opt = std::any_cast<Optimizer*>(any);
      }
      if (!opt) throw a.error("the schedule needs an optimizer (\"optimizer\": \"@optimizer\")");
      return make_scheduler(n, a, opt);
    });
  }
}

}  // namespace barton::optim
