#include "optim/optim.h"

#include <any>
#include <cmath>

#include <torch/torch.h>

#include "core/errors.h"

namespace barton::optim {

namespace {

std::vector<double> pair_arg(const ConfigNode& a, const char* k) {
  auto v = a.at(k).as<std::vector<double>>();
  if (v.size() != 2) throw a.at(k).error("expected two values");
  return v;
}

template <typename Opt, typename Options>
class TorchOpt final : public Optimizer {
 public:
  TorchOpt(std::string name, const std::vector<ParamGroup>& groups, Options o)
      : name_(std::move(name)), opt_(make_groups(groups, o), o) {
    for (auto& g : opt_.param_groups()) initial_.push_back(static_cast<Options&>(g.options()).lr());
  }
  static std::vector<torch::optim::OptimizerParamGroup> make_groups(
      const std::vector<ParamGroup>& groups, const Options& o) {
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
  double lr(std::size_t g) const override {
    return static_cast<const Options&>(opt_.param_groups().at(g).options()).lr();
  }
  void set_lr(double lr, std::size_t g) override {
    static_cast<Options&>(opt_.param_groups().at(g).options()).lr(lr);
  }
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
      std::string bytes(static_cast<const char*>(t.data_ptr()),
                        static_cast<std::size_t>(t.numel()));
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
      if (exp_avg_sq_[i].item<double>() == 0.0)
        exp_avg_sq_[i].copy_(norm);
      else
        exp_avg_sq_[i].mul_(o_.beta2).add_(norm, 1 - o_.beta2);
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
      if (name == "exp_avg")
        exp_avg_.at(i) = t.clone();
      else if (name == "exp_avg_sq")
        exp_avg_sq_.at(i) = t.clone();
      else
        max_sq_.at(i) = t.clone();
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
    if (any.has_value())
      return param_groups(a,
                          std::any_cast<std::vector<std::pair<std::string, torch::Tensor>>>(any));
  }
  throw a.error(
      "the optimizer needs the model's parameters (\"params\": \"#@model.parameters()\")");
}

std::vector<ComponentSpec> optimizer_specs();
std::vector<ComponentSpec> scheduler_specs();

/// `args` with the defaults of `name`'s spec filled in (as Registry::create does), so that the
/// direct builders below read every default from the spec too.
ConfigNode with_spec_defaults(const std::vector<ComponentSpec>& specs,
                              const std::string& name,
                              const ConfigNode& args) {
  for (const auto& spec : specs) {
    if (spec.name == name) return args.with_defaults(spec.defaults());
  }
  throw Error("unknown optimizer or LR schedule '" + name + "'");
}

}  // namespace

std::vector<ParamGroup> param_groups(
    const ConfigNode& a, const std::vector<std::pair<std::string, torch::Tensor>>& named) {
  std::vector<ParamGroup> groups(1);
  std::vector<std::string> matches;
  if (a.given("param_groups")) {
    const auto list = a.at("param_groups");
    if (!list.is_array())
      throw list.error("expected a list of {\"match\", \"lr\", \"weight_decay\"}");
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

std::unique_ptr<Optimizer> make_optimizer(const std::string& name,
                                          const ConfigNode& a,
                                          std::vector<torch::Tensor> params) {
  ParamGroup g;
  g.params = std::move(params);
  return make_optimizer(name, a, std::vector<ParamGroup>{g});
}

std::unique_ptr<Optimizer> make_optimizer(const std::string& name,
                                          const ConfigNode& args,
                                          std::vector<ParamGroup> params) {
  const ConfigNode a = with_spec_defaults(optimizer_specs(), name, args);
  const double lr = a.require<double>("lr");
  if (lr < 0) throw a.at("lr").error("must be non-negative");
  if (name == "Adam" || name == "AdamW") {
    const auto betas = pair_arg(a, "betas");
    if (name == "Adam") {
      auto o = torch::optim::AdamOptions(lr)
                   .betas({betas[0], betas[1]})
                   .eps(a.require<double>("eps"))
                   .weight_decay(a.require<double>("weight_decay"))
                   .amsgrad(a.require<bool>("amsgrad"));
      return std::make_unique<TorchOpt<torch::optim::Adam, torch::optim::AdamOptions>>(
          name, std::move(params), o);
    }
    auto o = torch::optim::AdamWOptions(lr)
                 .betas({betas[0], betas[1]})
                 .eps(a.require<double>("eps"))
                 .weight_decay(a.require<double>("weight_decay"))
                 .amsgrad(a.require<bool>("amsgrad"));
    return std::make_unique<TorchOpt<torch::optim::AdamW, torch::optim::AdamWOptions>>(
        name, std::move(params), o);
  }
  if (name == "SGD") {
    const double m = a.require<double>("momentum");
    const bool nesterov = a.require<bool>("nesterov");
    const double damp = a.require<double>("dampening");
    if (nesterov && (m <= 0 || damp != 0)) {
      throw ConfigError(a.source(), a.pointer() + "/nesterov",
                        "Nesterov momentum needs momentum > 0 and dampening 0");
    }
    auto o = torch::optim::SGDOptions(a.require<double>("lr"))
                 .momentum(m)
                 .dampening(damp)
                 .weight_decay(a.require<double>("weight_decay"))
                 .nesterov(nesterov);
    return std::make_unique<TorchOpt<torch::optim::SGD, torch::optim::SGDOptions>>(
        name, std::move(params), o);
  }
  if (name == "Novograd") {
    Novograd::Options o;
    o.lr = lr;
    const auto betas = pair_arg(a, "betas");
    o.beta1 = betas[0];
    o.beta2 = betas[1];
    o.eps = a.require<double>("eps");
    o.weight_decay = a.require<double>("weight_decay");
    o.grad_averaging = a.require<bool>("grad_averaging");
    o.amsgrad = a.require<bool>("amsgrad");
    return std::make_unique<Novograd>(std::move(params), o);
  }
  throw Error("unknown optimizer '" + name + "'");
}

namespace {

using A = ArgType;

/// The optimizers' specs (torch.optim and MONAI names and defaults).
std::vector<ComponentSpec> optimizer_specs() {
  auto params = [] {
    return opt("params", A::kAny, "\"#@model.parameters()\"", "Parameters to optimise.");
  };
  auto groups = [] {
    return opt("param_groups", A::kAny, "null",
               "Barton: [{\"match\": name prefix, \"lr\": x, \"weight_decay\": y}], parameter "
               "groups by name.");
  };
  return {
      ComponentSpec{
          "Adam",
          "torch.optim.Adam.",
          {params(), groups(), opt("lr", A::kFloat, "0.001", "Learning rate."),
           opt("betas", A::kFloats, "[0.9, 0.999]",
               "Decay rates of the running averages of the gradient and of its square."),
           opt("eps", A::kFloat, "1e-08", "Added to the denominator for numerical stability."),
           opt("weight_decay", A::kFloat, "0", "L2 penalty added to the gradient."),
           opt("amsgrad", A::kBool, "false",
               "Use the AMSGrad variant (maximum of past squared-gradient averages).")}},
      ComponentSpec{
          "AdamW",
          "torch.optim.AdamW.",
          {params(), groups(), opt("lr", A::kFloat, "0.001", "Learning rate."),
           opt("betas", A::kFloats, "[0.9, 0.999]",
               "Decay rates of the running averages of the gradient and of its square."),
           opt("eps", A::kFloat, "1e-08", "Added to the denominator for numerical stability."),
           opt("weight_decay", A::kFloat, "0.01", "Decoupled weight decay."),
           opt("amsgrad", A::kBool, "false",
               "Use the AMSGrad variant (maximum of past squared-gradient averages).")}},
      ComponentSpec{"SGD",
                    "torch.optim.SGD.",
                    {params(), groups(), req("lr", A::kFloat, "Learning rate."),
                     opt("momentum", A::kFloat, "0", "Momentum factor."),
                     opt("dampening", A::kFloat, "0", "Dampening of the momentum."),
                     opt("weight_decay", A::kFloat, "0", "L2 penalty added to the gradient."),
                     opt("nesterov", A::kBool, "false",
                         "Use Nesterov momentum (needs momentum > 0 and dampening 0).")}},
      ComponentSpec{
          "Novograd",
          "MONAI's Novograd.",
          {params(), groups(), opt("lr", A::kFloat, "0.001", "Learning rate."),
           opt("betas", A::kFloats, "[0.9, 0.98]",
               "Decay rates of the gradient average and of the per-tensor squared-norm average."),
           opt("eps", A::kFloat, "1e-08", "Added to the denominator for numerical stability."),
           opt("weight_decay", A::kFloat, "0", "Weight decay added to the normalised gradient."),
           opt("grad_averaging", A::kBool, "false",
               "Scale the normalised gradient by 1 - beta1 before the first moment."),
           opt("amsgrad", A::kBool, "false",
               "Use the maximum of past squared-norm averages (AMSGrad variant).")}}};
}

}  // namespace

void register_optimizers(OptimizerRegistry& r) {
  for (auto& spec : optimizer_specs()) {
    const std::string n = spec.name;
    r.add(std::move(spec), [n](const ConfigNode& a, const BuildContext& ctx) {
      return make_optimizer(n, a, params_from(ctx, a));
    });
  }
}

// ---------------------------------------------------------------- schedules

namespace {

/// lr_g(t) = base_g * factor(t) (torch's LambdaLR-style closed forms).
class FactorScheduler final : public LrScheduler {
 public:
  FactorScheduler(std::string name,
                  Optimizer* opt,
                  std::function<double(int64_t, double base)> lr_at)
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
    for (std::size_t g = 0; g < opt_->num_groups(); ++g)
      opt_->set_lr(lr_at_(t_, opt_->initial_lrs().at(g)), g);
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

std::unique_ptr<LrScheduler> make_scheduler(const std::string& name,
                                            const ConfigNode& args,
                                            Optimizer* opt) {
  const ConfigNode a = with_spec_defaults(scheduler_specs(), name, args);
  BARTON_CHECK(opt != nullptr, "a schedule needs an optimizer");
  const double kPi = 3.14159265358979323846;
  if (name == "StepLR") {
    const auto step = a.require<int64_t>("step_size");
    const double gamma = a.require<double>("gamma");
    if (step < 1) throw a.at("step_size").error("must be at least 1");
    return std::make_unique<FactorScheduler>(name, opt, [=](int64_t t, double b) {
      return b * std::pow(gamma, static_cast<double>(t / step));
    });
  }
  if (name == "MultiStepLR") {
    auto ms = a.require<std::vector<int64_t>>("milestones");
    const double gamma = a.require<double>("gamma");
    return std::make_unique<FactorScheduler>(name, opt, [=](int64_t t, double b) {
      int64_t k = 0;
      for (auto m : ms) k += t >= m;
      return b * std::pow(gamma, static_cast<double>(k));
    });
  }
  if (name == "ExponentialLR") {
    const double gamma = a.require<double>("gamma");
    return std::make_unique<FactorScheduler>(name, opt, [=](int64_t t, double b) {
      return b * std::pow(gamma, static_cast<double>(t));
    });
  }
  if (name == "CosineAnnealingLR") {
    const auto T = a.require<int64_t>("T_max");
    const double eta_min = a.require<double>("eta_min");
    if (T < 1) throw a.at("T_max").error("must be at least 1");
    return std::make_unique<FactorScheduler>(name, opt, [=](int64_t t, double b) {
      return eta_min + (b - eta_min) *
                           (1 + std::cos(kPi * static_cast<double>(t) / static_cast<double>(T))) /
                           2;
    });
  }
  if (name == "WarmupCosineSchedule") {
    const auto warm = a.require<int64_t>("warmup_steps");
    const auto total = a.require<int64_t>("t_total");
    const double end_lr = a.require<double>("end_lr"), cycles = a.require<double>("cycles"),
                 wm = a.require<double>("warmup_multiplier");
    return std::make_unique<FactorScheduler>(name, opt, [=](int64_t t, double b) {
      double f;
      if (t < warm) {
        f = wm +
            (1 - wm) * static_cast<double>(t) / std::max<double>(1.0, static_cast<double>(warm));
        return b * f;
      }
      const double progress =
          static_cast<double>(t - warm) / std::max<double>(1.0, static_cast<double>(total - warm));
      f = std::max(0.0, 0.5 * (1 + std::cos(kPi * cycles * 2.0 * progress)));
      return std::max(b * f, end_lr);
    });
  }
  if (name == "PolynomialLR") {
    const auto total = a.require<int64_t>("total_iters");
    const double power = a.require<double>("power");
    return std::make_unique<FactorScheduler>(name, opt, [=](int64_t t, double b) {
      const double frac =
          1.0 - static_cast<double>(std::min(t, total)) / static_cast<double>(total);
      return b * std::pow(frac, power);
    });
  }
  if (name == "LinearLR") {
    const double s = a.get_or("start_factor", 1.0 / 3.0), e = a.require<double>("end_factor");
    const auto total = a.require<int64_t>("total_iters");
    return std::make_unique<FactorScheduler>(name, opt, [=](int64_t t, double b) {
      return b *
             (s + (e - s) * static_cast<double>(std::min(t, total)) / static_cast<double>(total));
    });
  }
  if (name == "ReduceLROnPlateau") {
    Plateau::Options o;
    const auto mode = a.require<std::string>("mode");
    if (mode != "min" && mode != "max") throw a.at("mode").error("must be min or max");
    o.max_mode = mode == "max";
    o.factor = a.require<double>("factor");
    if (o.factor >= 1.0) throw a.at("factor").error("must be < 1");
    o.patience = a.require<int64_t>("patience");
    o.threshold = a.require<double>("threshold");
    o.relative = a.require<std::string>("threshold_mode") == "rel";
    o.cooldown = a.require<int64_t>("cooldown");
    if (a.has("min_lr") && a.at("min_lr").is_number()) o.min_lr = a.at("min_lr").as<double>();
    o.eps = a.require<double>("eps");
    return std::make_unique<Plateau>(opt, o);
  }
  throw Error("unknown LR schedule '" + name + "'");
}

namespace {

/// The learning-rate schedules' specs (torch.optim.lr_scheduler and MONAI names and defaults).
std::vector<ComponentSpec> scheduler_specs() {
  auto optim = [] {
    return opt("optimizer", A::kReference, "\"@optimizer\"", "The optimizer to schedule.");
  };
  auto last = [] {
    return opt("last_epoch", A::kInt, "-1",
               "Accepted for MONAI compatibility; ignored (a resumed run restores the step from "
               "its checkpoint).");
  };
  return {
      ComponentSpec{"StepLR",
                    "Decays by gamma every step_size steps.",
                    {optim(), req("step_size", A::kInt, "Steps between decays."),
                     opt("gamma", A::kFloat, "0.1", "Multiplicative decay factor."), last()}},
      ComponentSpec{
          "MultiStepLR",
          "Decays by gamma at each milestone.",
          {optim(),
           req("milestones", A::kInts, "Steps at which the learning rate is multiplied by gamma."),
           opt("gamma", A::kFloat, "0.1", "Multiplicative decay factor."), last()}},
      ComponentSpec{
          "ExponentialLR",
          "Decays by gamma every step.",
          {optim(), req("gamma", A::kFloat, "Multiplicative decay factor applied at every step."),
           last()}},
      ComponentSpec{"CosineAnnealingLR",
                    "Cosine annealing to eta_min over T_max steps.",
                    {optim(), req("T_max", A::kInt, "Steps of a half cosine period."),
                     opt("eta_min", A::kFloat, "0", "Minimum learning rate."), last()}},
      ComponentSpec{
          "WarmupCosineSchedule",
          "MONAI's linear warmup then cosine decay.",
          {optim(), req("warmup_steps", A::kInt, "Steps of linear warmup."),
           req("t_total", A::kInt, "Total steps of the schedule."),
           opt("end_lr", A::kFloat, "0.0", "Lower bound on the learning rate after the warmup."),
           opt("cycles", A::kFloat, "0.5",
               "Cosine cycles over the decay (0.5: one half cosine down to 0)."),
           last(),
           opt("warmup_multiplier", A::kFloat, "0",
               "Fraction of the learning rate the warmup starts from.")}},
      ComponentSpec{
          "PolynomialLR",
          "nnU-Net's poly decay: lr * (1 - step/total_iters)^power.",
          {optim(),
           opt("total_iters", A::kInt, "5", "Steps over which the learning rate decays to 0."),
           opt("power", A::kFloat, "1.0", "Exponent of the decay."), last()}},
      ComponentSpec{
          "LinearLR",
          "Linear warmup factor from start_factor to end_factor.",
          {optim(),
           opt("start_factor", A::kFloat, "0.3333333333333333", "Learning-rate factor at step 0."),
           opt("end_factor", A::kFloat, "1.0",
               "Learning-rate factor reached at total_iters and kept after."),
           opt("total_iters", A::kInt, "5", "Steps from start_factor to end_factor."), last()}},
      ComponentSpec{
          "ReduceLROnPlateau",
          "Reduces the LR when a metric stops improving.",
          {optim(),
           opt("mode", A::kString, "\"min\"",
               "min: the metric should decrease; max: it should increase."),
           opt("factor", A::kFloat, "0.1",
               "Multiplier applied to the learning rate on a plateau (below 1)."),
           opt("patience", A::kInt, "10",
               "Steps (epochs by default) without improvement before the learning rate is "
               "reduced."),
           opt("threshold", A::kFloat, "0.0001", "Smallest change that counts as an improvement."),
           opt("threshold_mode", A::kString, "\"rel\"",
               "rel: the change is relative to the best value; abs: absolute."),
           opt("cooldown", A::kInt, "0",
               "Steps to wait after a reduction before counting bad steps again."),
           opt("min_lr", A::kFloats, "0",
               "Lower bound on the learning rate (a number; a per-group list is ignored)."),
           opt("eps", A::kFloat, "1e-08", "Reductions smaller than this are skipped.")}}};
}

}  // namespace

void register_schedulers(SchedulerRegistry& r) {
  for (auto& spec : scheduler_specs()) {
    const std::string n = spec.name;
    r.add(std::move(spec),
          [n](const ConfigNode& a, const BuildContext& ctx) -> std::unique_ptr<LrScheduler> {
            Optimizer* opt = nullptr;
            if (ctx.lookup) {
              auto any = ctx.lookup("optimizer");
              if (any.has_value()) opt = std::any_cast<Optimizer*>(any);
            }
            if (!opt)
              throw a.error("the schedule needs an optimizer (\"optimizer\": \"@optimizer\")");
            return make_scheduler(n, a, opt);
          });
  }
}

}  // namespace barton::optim
