#pragma once

// closest_match lives with the shared YAML reader; recipe code keeps including this name.
#include "builder/util/suggest.h"
