#pragma once
// Demo data: an organization, its CEO, an admin and a member, leads and
// invoices. Idempotent: when the demo organization exists, only the CEO's
// password is renewed (it is random and shown only when set).

#include <string>

#include "core/clock.hpp"
#include "core/errors.hpp"
#include "store/store.hpp"

namespace dvs::app {

inline constexpr const char* kDemoOrgName = "Acme Robotics (demo)";
inline constexpr const char* kDemoCeoEmail = "ceo@acme-robotics.example";

struct DemoLogin {
  std::string org_id;
  std::string email;
  std::string password;
  bool created = false;  // false: the data was already there
  size_t leads = 0;
  size_t invoices = 0;
};

core::Result<DemoLogin> seed_demo(store::Store& store, const core::Clock& clock);

}  // namespace dvs::app
